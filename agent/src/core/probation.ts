import { Worker } from 'node:worker_threads';
import { PerchError, type Logger } from '@perch/shared';
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
  // Warm-up runs on zeros; the sample (when it fits the first input) is the self-test and then feeds
  // the trial runs, so a failure names the input that caused it.
  const zeros = {};
  const feeds = {};
  let sampleUsed = false;
  session.inputMetadata.forEach((meta, i) => {
    if (!meta.isTensor) throw new Error('input ' + meta.name + ' is not a tensor');
    const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const type = BYTES[meta.type] ? meta.type : 'float32';
    const n = dims.reduce((a, b) => a * b, 1);
    zeros[meta.name] = new ort.Tensor(type, new ARRAYS[type](n), dims);
    feeds[meta.name] = zeros[meta.name];
    const sample = workerData.sample;
    if (i === 0 && sample && sample.byteLength === n * BYTES[type]) {
      feeds[meta.name] = new ort.Tensor(type, new ARRAYS[type](new Uint8Array(sample).buffer), dims);
      sampleUsed = true;
    }
  });
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
 * the model's own input metadata, run the bundle's sample input when it has one (raw bytes of the first
 * input tensor), then `trialRuns` inferences without an error or a non-finite output.
 */
export class OnnxProbation implements Probation {
  constructor(
    private readonly options: ProbationOptions,
    private readonly logger: Logger,
  ) {}

  run(model: LoadedModel): Promise<ProbationReport> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const sample = model.files.sample;
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          ortPath: require.resolve('onnxruntime-node'),
          model: new Uint8Array(model.files.model),
          sample: sample ? new Uint8Array(sample) : undefined,
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
          if (model.files.sample && !reply.sampleUsed) {
            this.logger.warn('sample input does not fit the first input tensor; probation used zeros', {
              model: model.name,
            });
          }
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
