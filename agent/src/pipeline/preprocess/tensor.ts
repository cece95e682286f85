import type { ImageInputSpec, Normalisation } from '@perch/shared';

/** A tensor ready for onnxruntime, without depending on its Tensor class. */
export interface TensorData {
  readonly type: 'float32' | 'uint8' | 'int64';
  readonly data: Float32Array | Uint8Array | BigInt64Array;
  readonly dims: readonly number[];
}

/** value = pixel * a[c] + b[c] for each model channel c. */
export function affineFor(norm: Normalisation): { a: number[]; b: number[] } {
  const at = (v: number | number[], c: number): number =>
    Array.isArray(v) ? (v[c] ?? v[v.length - 1] ?? 0) : v;
  const a: number[] = [];
  const b: number[] = [];
  for (let c = 0; c < 3; c++) {
    if (norm.kind === 'meanStd') {
      const std = at(norm.std, c);
      a.push(1 / (255 * std));
      b.push(-at(norm.mean, c) / std);
    } else if (norm.kind === 'scaleOffset') {
      a.push(norm.scale);
      b.push(norm.offset);
    } else {
      a.push(1);
      b.push(0);
    }
  }
  return { a, b };
}

/**
 * Interleaved 8-bit pixels (1, 3 or 4 channels, RGB order) -> the model's tensor: colour order, layout,
 * dtype and normalisation from the spec. For uint8 inputs the bytes are copied as they are.
 */
export function pixelsToTensor(px: Uint8Array, channels: number, spec: ImageInputSpec): TensorData {
  const { width: w, height: h } = spec;
  const n = w * h;
  // Source channel for each model channel: grey repeats channel 0; BGR reverses.
  const src = channels < 3 ? [0, 0, 0] : spec.colour === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const nhwc = spec.layout === 'NHWC';
  const dims = nhwc ? [1, h, w, 3] : [1, 3, h, w];
  if (spec.dtype === 'uint8') {
    const out = new Uint8Array(n * 3);
    for (let c = 0; c < 3; c++) {
      const s = src[c] as number;
      for (let i = 0; i < n; i++) out[nhwc ? i * 3 + c : c * n + i] = px[i * channels + s] as number;
    }
    return { type: 'uint8', data: out, dims };
  }
  const { a, b } = affineFor(spec.normalisation);
  const out = new Float32Array(n * 3);
  for (let c = 0; c < 3; c++) {
    const s = src[c] as number;
    const ac = a[c] as number;
    const bc = b[c] as number;
    if (nhwc) {
      for (let i = 0; i < n; i++) out[i * 3 + c] = (px[i * channels + s] as number) * ac + bc;
    } else {
      const base = c * n;
      for (let i = 0; i < n; i++) out[base + i] = (px[i * channels + s] as number) * ac + bc;
    }
  }
  return { type: 'float32', data: out, dims };
}
