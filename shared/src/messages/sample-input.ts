import type { ModelSpec } from './model-spec';

/** Bytes per element of the dtypes a spec can name. */
export const SAMPLE_DTYPE_BYTES = { float32: 4, uint8: 1 } as const;

export interface SampleInput {
  /** The model input the sample feeds (the spec's `input.name`). */
  name: string;
  dtype: keyof typeof SAMPLE_DTYPE_BYTES;
  /** Fully resolved dims: batch 1, the spec's layout and size. */
  dims: number[];
  /** The exact byte length `sample.bin` must have. */
  bytes: number;
}

/**
 * The tensor `sample.bin` is read as: the raw little-endian elements of the spec's input, shaped the way
 * the pipeline feeds that input, so the self-test sees what a frame would give it.
 * - image:  NHWC [1, height, width, 3] or NCHW [1, 3, height, width], the spec's dtype;
 * - audio:  [1, windowSamples] float32;
 * - tensor: the spec's shape and dtype; a -1 takes the model's fixed dim there, else 1.
 * `modelShape` is the model's own shape of that input (numbers fixed, strings or <= 0 dynamic).
 * The controller checks uploads with it and the agent's probation builds the same tensor.
 */
export function sampleInput(spec: ModelSpec, modelShape: ReadonlyArray<number | string> = []): SampleInput {
  const input = spec.input;
  let dtype: SampleInput['dtype'];
  let dims: number[];
  if (input.kind === 'image') {
    dtype = input.dtype;
    dims = input.layout === 'NHWC' ? [1, input.height, input.width, 3] : [1, 3, input.height, input.width];
  } else if (input.kind === 'audio') {
    dtype = 'float32';
    dims = [1, input.windowSamples];
  } else {
    dtype = input.dtype;
    dims = resolveSampleDims(input.shape, modelShape);
  }
  const bytes = dims.reduce((a, b) => a * b, 1) * SAMPLE_DTYPE_BYTES[dtype];
  return { name: input.name, dtype, dims, bytes };
}

/** A -1 in the spec shape takes the model's fixed dim at that position, else 1 (one sample, batch 1). */
export function resolveSampleDims(
  shape: readonly number[],
  modelShape: ReadonlyArray<number | string> = [],
): number[] {
  return shape.map((d, i) => {
    if (d !== -1) return d;
    const m = modelShape[i];
    return typeof m === 'number' && m > 0 ? m : 1;
  });
}
