import { Worker } from 'node:worker_threads';
import {
  modelSpecSchema,
  PerchError,
  safeJsonParse,
  sampleInput,
  validate,
  type Logger,
} from '@perch/shared';
import type { LoadedModel } from './model-store';

export interface ProbationOptions {
  warmupRuns: number;
  /** Inferences that must all succeed before the model is committed. */
  trialRuns: number;
  /** The whole probation; a model that hangs onnxruntime fails it. Default 5 minutes. */
  timeoutMs?: number;
}

export interface ProbationReport {
  loadMs: number;
  meanInferenceMs: number;
  sampleUsed: boolean;
}

/** The seam: the reconciler asks "is this model fit to run here?". */
export interface Probation {
  run(model: LoadedModel): Promise<ProbationReport>;
}

/**
 * The probation runs in a worker thread: onnxruntime's run blocks the thread it is on, and the agent's
 * event loop (MQTT keep-alive, watchdog) must go on meanwhile. Plain JavaScript evaluated from a
 * string, so it runs the same from dist/ and under jest.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const BYTES = { float32: 4, uint8: 1, int8: 1, int32: 4, int64: 8, float64: 8, bool: 1 };
const ARRAYS = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array, int32: Int32Array, int64: BigInt64Array, float64: Float64Array, bool: Uint8Array };
let stage = 'load';
(async () => {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(workerData.model, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  const loadMs = performance.now() - t0;
  stage = 'inputs';
  // Warm-up runs on zeros; the sample is the self-test and then feeds the trial runs, so a failure names
  // the input that caused it. The sample is the spec's input tensor (sampleInput in @perch/shared, the
  // controller's upload check); one that does not fit fails the probation instead of testing nothing.
  const zeros = {};
  const feeds = {};
  session.inputMetadata.forEach((meta) => {
    if (!meta.isTensor) throw new Error('input ' + meta.name + ' is not a tensor');
    const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const type = BYTES[meta.type] ? meta.type : 'float32';
    const n = dims.reduce((a, b) => a * b, 1);
    zeros[meta.name] = new ort.Tensor(type, new ARRAYS[type](n), dims);
    feeds[meta.name] = zeros[meta.name];
  });
  const sample = workerData.sample;
  if (sample) {
    stage = 'self-test';
    const meta = session.inputMetadata.find((m) => m.name === sample.name);
    if (!meta) throw new Error('sample.bin feeds input ' + JSON.stringify(sample.name) + ', which the model lacks');
    // A -1 takes the model's fixed dim there, else 1: resolveSampleDims in @perch/shared.
    const dims = sample.dims.map((d, i) => (d !== -1 ? d : typeof meta.shape[i] === 'number' && meta.shape[i] > 0 ? meta.shape[i] : 1));
    const need = dims.reduce((a, b) => a * b, 1) * BYTES[sample.dtype];
    if (sample.bytes.byteLength !== need) {
      throw new Error('sample.bin is ' + sample.bytes.byteLength + ' bytes; input ' + JSON.stringify(sample.name) + ' ' + sample.dtype + ' [' + dims.join(', ') + '] needs ' + need + ' bytes');
    }
    feeds[sample.name] = new ort.Tensor(sample.dtype, new ARRAYS[sample.dtype](new Uint8Array(sample.bytes).buffer), dims);
  }
  const sampleUsed = Boolean(sample);
  const runOnce = async (name) => {
    stage = name;
    const out = await session.run(name === 'warm-up' ? zeros : feeds);
    for (const [output, t] of Object.entries(out)) {
      if (t.data instanceof Float32Array || t.data instanceof Float64Array) {
        for (const v of t.data) if (!Number.isFinite(v)) throw new Error('output ' + output + ' has a non-finite value');
      }
    }
  };
  for (let i = 0; i < workerData.warmupRuns; i++) await runOnce('warm-up');
  if (sampleUsed) await runOnce('self-test');
  const t1 = performance.now();
  for (let i = 0; i < workerData.trialRuns; i++) await runOnce('trial');
  const meanInferenceMs = workerData.trialRuns ? (performance.now() - t1) / workerData.trialRuns : 0;
  await session.release();
  parentPort.postMessage({ ok: true, loadMs, meanInferenceMs, sampleUsed });
})().catch((err) => parentPort.postMessage({ ok: false, stage, message: err && err.message ? err.message : String(err) }));
`;

type Reply =
  | { ok: true; loadMs: number; meanInferenceMs: number; sampleUsed: boolean }
  | { ok: false; stage: string; message: string };

/** What the worker needs to feed sample.bin: the spec's input, its dims (a -1 is resolved there) and dtype. */
interface SampleFeed {
  name: string;
  dtype: 'float32' | 'uint8';
  dims: number[];
  bytes: Uint8Array;
}

function sampleFeed(specData: Buffer, bytes: Buffer): SampleFeed {
  const parsed = safeJsonParse(specData, { maxBytes: 256 * 1024 });
  if (!parsed.ok) throw new Error(`spec.json: ${parsed.error.message}`);
  const checked = validate(modelSpecSchema, parsed.value, 'spec.json');
  if (!checked.ok) throw new Error(checked.error.message);
  const spec = checked.value;
  const want = sampleInput(spec);
  return {
    name: want.name,
    dtype: want.dtype,
    // The worker fills a tensor spec's -1 from the model's own shape, as the controller does.
    dims: spec.input.kind === 'tensor' ? [...spec.input.shape] : want.dims,
    bytes: new Uint8Array(bytes),
  };
}

function failure(stage: string, message: string): PerchError {
  return new PerchError(
    'E_UPDATE_PROBATION_FAILED',
    `probation failed at ${stage}: ${message.slice(0, 500)}`,
    {
      stage,
    },
  );
}

/**
 * Probation in onnxruntime: load the model from the verified bytes, warm up on zero tensors shaped from
 * the model's own input metadata, run the bundle's sample input when it has one (the spec's input
 * tensor, see `sampleInput`; a sample that does not fit fails the probation at `self-test`), then
 * `trialRuns` inferences without an error or a non-finite output.
 */
export class OnnxProbation implements Probation {
  constructor(
    private readonly options: ProbationOptions,
    private readonly logger: Logger,
  ) {}

  run(model: LoadedModel): Promise<ProbationReport> {
    let sample: SampleFeed | undefined;
    try {
      sample = model.files.sample ? sampleFeed(model.files.spec, model.files.sample) : undefined;
    } catch (err) {
      return Promise.reject(failure('self-test', (err as Error).message));
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          ortPath: require.resolve('onnxruntime-node'),
          model: new Uint8Array(model.files.model),
          sample,
          warmupRuns: this.options.warmupRuns,
          trialRuns: this.options.trialRuns,
        },
      });
      const done = (err: PerchError | undefined, report?: ProbationReport) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void worker.terminate();
        if (err) reject(err);
        else resolve(report!);
      };
      const timer = setTimeout(
        () => done(failure('timeout', `no answer within ${this.options.timeoutMs ?? 300_000} ms`)),
        this.options.timeoutMs ?? 300_000,
      );
      timer.unref();
      worker.on('message', (reply: Reply) => {
        if (reply.ok) {
          done(undefined, {
            loadMs: reply.loadMs,
            meanInferenceMs: reply.meanInferenceMs,
            sampleUsed: reply.sampleUsed,
          });
        } else done(failure(reply.stage, reply.message));
      });
      worker.on('error', (err) => done(failure('worker', err.message)));
      worker.on('exit', (code) => done(failure('worker', `probation worker exited with ${code}`)));
    });
  }
}
