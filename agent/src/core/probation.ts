import type * as OrtModule from 'onnxruntime-node';
import { PerchError, type Logger } from '@perch/shared';
import type { LoadedModel } from './model-store';

export interface ProbationOptions {
  warmupRuns: number;
  /** Inferences that must all succeed before the model is committed. */
  trialRuns: number;
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

type Ort = typeof OrtModule;
type TensorType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'float64' | 'bool';

const BYTES: Record<TensorType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
  float64: 8,
  bool: 1,
};

function zeros(type: TensorType, n: number) {
  switch (type) {
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'float64':
      return new Float64Array(n);
    default:
      return new Float32Array(n);
  }
}

function failure(stage: string, err: unknown): PerchError {
  const message = err instanceof Error ? err.message : String(err);
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
    private readonly now: () => number = () => performance.now(),
  ) {}

  async run(model: LoadedModel): Promise<ProbationReport> {
    let ort: Ort;
    try {
      ort = await import('onnxruntime-node');
    } catch (err) {
      throw failure('runtime', err);
    }
    const t0 = this.now();
    let session: OrtModule.InferenceSession;
    try {
      session = await ort.InferenceSession.create(new Uint8Array(model.files.model), {
        logSeverityLevel: 3,
        intraOpNumThreads: 1,
      });
    } catch (err) {
      throw failure('load', err);
    }
    const loadMs = this.now() - t0;
    try {
      const feeds: Record<string, OrtModule.Tensor> = {};
      let sampleUsed = false;
      for (const [i, meta] of session.inputMetadata.entries()) {
        if (!meta.isTensor) throw failure('inputs', `input ${meta.name} is not a tensor`);
        const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
        const type = (meta.type in BYTES ? meta.type : 'float32') as TensorType;
        const n = dims.reduce((a, b) => a * b, 1);
        let data = zeros(type, n);
        const sample = model.files.sample;
        if (i === 0 && sample) {
          if (sample.length === n * BYTES[type]) {
            const copy = new Uint8Array(sample).buffer;
            data =
              type === 'int64'
                ? new BigInt64Array(copy)
                : new (data.constructor as Float32ArrayConstructor)(copy);
            sampleUsed = true;
          } else {
            this.logger.warn('sample input does not fit the first input tensor; using zeros', {
              model: model.name,
              expectedBytes: n * BYTES[type],
              sampleBytes: sample.length,
            });
          }
        }
        feeds[meta.name] = new ort.Tensor(type, data, dims);
      }
      const runOnce = async (stage: string) => {
        let out;
        try {
          out = await session.run(feeds);
        } catch (err) {
          throw failure(stage, err);
        }
        for (const [name, tensor] of Object.entries(out)) {
          const values = tensor.data;
          if (values instanceof Float32Array || values instanceof Float64Array) {
            for (const v of values) {
              if (!Number.isFinite(v)) throw failure(stage, `output ${name} has a non-finite value`);
            }
          }
        }
      };
      for (let i = 0; i < this.options.warmupRuns; i++) await runOnce('warm-up');
      if (sampleUsed) await runOnce('self-test');
      const t1 = this.now();
      for (let i = 0; i < this.options.trialRuns; i++) await runOnce('trial');
      const meanInferenceMs = this.options.trialRuns ? (this.now() - t1) / this.options.trialRuns : 0;
      return { loadMs, meanInferenceMs, sampleUsed };
    } finally {
      await session.release().catch(() => undefined);
    }
  }
}
