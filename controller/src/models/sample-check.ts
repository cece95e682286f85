import * as ort from 'onnxruntime-node';
import { PerchError, sampleInput, type ModelSpec } from '@perch/shared';
import type { ModelIo } from './validate';

const ZERO_ARRAYS: Record<string, (n: number) => ort.Tensor['data']> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  uint8: (n) => new Uint8Array(n),
  int8: (n) => new Int8Array(n),
  int32: (n) => new Int32Array(n),
  int64: (n) => new BigInt64Array(n),
  bool: (n) => new Uint8Array(n),
};

function refuse(message: string, details?: Record<string, unknown>): PerchError {
  return new PerchError('E_MODEL_SAMPLE_INVALID', message, details);
}

/**
 * The bundle's sample must be the device's self-test: the exact bytes of the spec's input tensor (see
 * `sampleInput` in @perch/shared, which the agent's probation reads the same way), and one inference on
 * it must succeed with finite outputs. Other model inputs get zeros, as in the agent's probation.
 */
export async function checkSample(
  session: ort.InferenceSession,
  spec: ModelSpec,
  io: ModelIo,
  sample: Buffer,
): Promise<void> {
  const modelInput = io.inputs.find((i) => i.name === spec.input.name);
  const want = sampleInput(spec, modelInput?.shape ?? []);
  if (sample.length !== want.bytes) {
    throw refuse(
      `sample is ${sample.length} bytes; input ${JSON.stringify(want.name)} ${want.dtype} [${want.dims.join(', ')}] needs ${want.bytes} bytes`,
      { expectedBytes: want.bytes, actualBytes: sample.length, dims: want.dims, dtype: want.dtype },
    );
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (meta.name === want.name) continue;
    if (!meta.isTensor) throw refuse(`input ${meta.name} is not a tensor`);
    const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const type = ZERO_ARRAYS[meta.type] ? meta.type : 'float32';
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[meta.name] = new ort.Tensor(type as 'float32', ZERO_ARRAYS[type]!(n) as Float32Array, dims);
  }
  // A copy: the multipart buffer may be a view into a pooled allocation that is not aligned for floats.
  const bytes = new Uint8Array(sample).buffer;
  feeds[want.name] =
    want.dtype === 'float32'
      ? new ort.Tensor('float32', new Float32Array(bytes), want.dims)
      : new ort.Tensor('uint8', new Uint8Array(bytes), want.dims);
  let out: ort.InferenceSession.OnnxValueMapType;
  try {
    out = await session.run(feeds);
  } catch (err) {
    throw refuse(`inference on the sample fails: ${(err as Error).message.slice(0, 500)}`);
  }
  for (const [name, value] of Object.entries(out)) {
    const t = value as ort.Tensor;
    // By the tensor's type, not `instanceof`: the typed arrays onnxruntime makes may be another realm's.
    if (t.type !== 'float32' && t.type !== 'float64') continue;
    for (const v of t.data as ArrayLike<number> & Iterable<number>) {
      if (!Number.isFinite(v))
        throw refuse(`inference on the sample gives a non-finite value in output ${name}`);
    }
  }
}
