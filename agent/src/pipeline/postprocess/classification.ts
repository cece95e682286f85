import type { ClassificationParams } from '@perch/shared';
import type { Detection, InferenceResult } from '../types';
import type { Outputs, PostContext, Postprocessor } from './types';
import { floats, labelOf, pickOutput, shapeError } from './util';

/** True when the values already look like probabilities: all in 0..1 and summing to about 1. */
export function looksLikeProbabilities(v: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    if (!(x >= 0 && x <= 1)) return false;
    sum += x;
  }
  return Math.abs(sum - 1) < 1e-3;
}

export function softmax(v: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) max = Math.max(max, v[i] as number);
  const out = new Float32Array(v.length);
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const e = Math.exp((v[i] as number) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/** Indices of the k largest values, largest first. */
export function topK(v: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => (v[b] as number) - (v[a] as number));
  return idx.slice(0, k);
}

export class ClassificationPostprocessor implements Postprocessor {
  readonly outputNames?: readonly string[];

  constructor(private readonly params: ClassificationParams) {
    if (params.output) this.outputNames = [params.output];
  }

  process(outputs: Outputs, ctx: PostContext): InferenceResult {
    const t = pickOutput(outputs, this.params.output, 'classification');
    const classes = t.dims[t.dims.length - 1] ?? 0;
    const batch = t.dims.slice(0, -1).reduce((p, d) => p * d, 1);
    if (t.dims.length === 0 || classes < 1 || batch !== 1)
      throw shapeError('classification', t, '[1, classes]');
    const raw = floats(t, 'classification');
    const soft =
      this.params.softmax === true || (this.params.softmax === 'auto' && !looksLikeProbabilities(raw));
    const probs = soft ? softmax(raw) : raw;
    const detections: Detection[] = [];
    for (const i of topK(probs, this.params.topK)) {
      const score = probs[i] as number;
      if (score < this.params.minScore) continue;
      detections.push({ label: labelOf(ctx.labels, i), classIndex: i, score });
    }
    return { detections, frame: frameOf(ctx) };
  }
}

export function frameOf(ctx: PostContext): { width: number; height: number } | undefined {
  return ctx.geometry ? { width: ctx.geometry.frameWidth, height: ctx.geometry.frameHeight } : undefined;
}
