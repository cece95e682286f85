import { PerchError } from '@perch/shared';
import type { Outputs, OutputTensor } from './types';

/** The named output, or the first one when no name is given. */
export function pickOutput(outputs: Outputs, name: string | undefined, what: string): OutputTensor {
  const key = name ?? Object.keys(outputs)[0];
  const t = key === undefined ? undefined : outputs[key];
  if (!t) throw new PerchError('E_PIPELINE_POSTPROCESS', `${what}: output ${name ?? '(first)'} is missing`);
  return t;
}

/** The tensor's values as floats (float32 as is; other numeric types converted). */
export function floats(t: OutputTensor, what: string): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (
    d instanceof Float64Array ||
    d instanceof Uint8Array ||
    d instanceof Int8Array ||
    d instanceof Int32Array ||
    d instanceof Uint16Array ||
    d instanceof Int16Array
  ) {
    return Float32Array.from(d);
  }
  if (d instanceof BigInt64Array) return Float32Array.from(d, (v) => Number(v));
  if (Array.isArray(d)) return Float32Array.from(d as number[]);
  throw new PerchError('E_PIPELINE_POSTPROCESS', `${what}: output of type ${t.type} is not numeric`);
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function labelOf(labels: readonly string[], index: number): string {
  return labels[index] ?? String(index);
}

export function shapeError(what: string, t: OutputTensor, expected: string): PerchError {
  return new PerchError(
    'E_PIPELINE_POSTPROCESS',
    `${what}: output has shape [${t.dims.join(',')}], expected ${expected}`,
    {
      dims: t.dims,
    },
  );
}
