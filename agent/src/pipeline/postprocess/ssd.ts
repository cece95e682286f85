import type { SsdParams } from '@perch/shared';
import { PerchError } from '@perch/shared';
import { inputBoxToFrame, inputToFrameX, inputToFrameY } from '../preprocess/geometry';
import type { Detection, InferenceResult } from '../types';
import { ANCHOR_PRESETS, generateAnchors, type Anchors } from './anchors';
import { frameOf } from './classification';
import { nms, type Candidate } from './nms';
import type { Outputs, OutputTensor, PostContext, Postprocessor } from './types';
import { floats, shapeError, sigmoid } from './util';

interface Concatenated {
  readonly values: Float32Array;
  /** Values per anchor. */
  readonly width: number;
  readonly rows: number;
}

/** Outputs [1, n_i, K] concatenated along the anchor axis. */
function concat(outputs: Outputs, names: readonly string[], what: string): Concatenated {
  const parts: { t: OutputTensor; v: Float32Array }[] = [];
  let width = -1;
  let rows = 0;
  for (const name of names) {
    const t = outputs[name];
    if (!t) throw new PerchError('E_PIPELINE_POSTPROCESS', `${what}: output ${name} is missing`);
    const k = t.dims.length >= 3 ? (t.dims[t.dims.length - 1] as number) : 1;
    const n =
      t.dims.length >= 3 ? (t.dims[t.dims.length - 2] as number) : (t.dims[t.dims.length - 1] as number);
    if (width !== -1 && k !== width) throw shapeError(what, t, `[1, anchors, ${width}]`);
    width = k;
    rows += n;
    parts.push({ t, v: floats(t, what) });
  }
  const values = new Float32Array(rows * width);
  let at = 0;
  for (const p of parts) {
    values.set(p.v, at);
    at += p.v.length;
  }
  return { values, width, rows };
}

/**
 * SSD with fixed-size anchors, decoded as MediaPipe's TensorsToDetectionsCalculator does (BlazeFace):
 * box = [dx, dy, w, h, kp1x, kp1y, ...] / scale * anchor size + anchor centre, in normalised input
 * coordinates; scores are logits (sigmoid) unless `sigmoid` is false.
 */
export class SsdPostprocessor implements Postprocessor {
  readonly outputNames: readonly string[];
  private anchors: Anchors | undefined;

  constructor(
    private readonly params: SsdParams,
    private readonly inputWidth: number,
    private readonly inputHeight: number,
  ) {
    this.outputNames = [...params.scoreOutputs, ...params.boxOutputs];
  }

  private getAnchors(): Anchors {
    if (!this.anchors) {
      const a = this.params.anchors;
      this.anchors = generateAnchors(
        typeof a === 'string' ? ANCHOR_PRESETS[a] : a,
        this.inputWidth,
        this.inputHeight,
      );
    }
    return this.anchors;
  }

  process(outputs: Outputs, ctx: PostContext): InferenceResult {
    const p = this.params;
    const scores = concat(outputs, p.scoreOutputs, 'ssd scores');
    const boxes = concat(outputs, p.boxOutputs, 'ssd boxes');
    const anchors = this.getAnchors();
    if (scores.rows !== anchors.count || boxes.rows !== anchors.count || boxes.width < 4) {
      throw new PerchError(
        'E_PIPELINE_POSTPROCESS',
        `ssd: ${scores.rows} scores and ${boxes.rows}x${boxes.width} boxes do not fit ${anchors.count} anchors`,
      );
    }
    const W = this.inputWidth;
    const H = this.inputHeight;
    const candidates: Candidate[] = [];
    for (let i = 0; i < anchors.count; i++) {
      let best = 0;
      let raw = -Infinity;
      for (let c = 0; c < scores.width; c++) {
        const s = scores.values[i * scores.width + c] as number;
        if (s > raw) {
          raw = s;
          best = c;
        }
      }
      const clipped = Math.max(-p.scoreClip, Math.min(p.scoreClip, raw));
      const score = p.sigmoid ? sigmoid(clipped) : clipped;
      if (!(score >= p.scoreThreshold)) continue;
      const b = i * boxes.width;
      const ax = anchors.x[i] as number;
      const ay = anchors.y[i] as number;
      const cx = (boxes.values[b] as number) / p.xScale + ax;
      const cy = (boxes.values[b + 1] as number) / p.yScale + ay;
      const w = (boxes.values[b + 2] as number) / p.wScale;
      const h = (boxes.values[b + 3] as number) / p.hScale;
      candidates.push({
        x1: (cx - w / 2) * W,
        y1: (cy - h / 2) * H,
        x2: (cx + w / 2) * W,
        y2: (cy + h / 2) * H,
        score,
        classIndex: best,
        index: i,
      });
    }
    const kept = nms(candidates, p.iouThreshold, p.maxDetections, true);
    const g = ctx.geometry;
    const detections: Detection[] = kept.map((c) => {
      const keypoints: [number, number][] = [];
      const b = c.index * boxes.width;
      for (let k = 4; k + 1 < boxes.width; k += 2) {
        const kx = ((boxes.values[b + k] as number) / p.xScale + (anchors.x[c.index] as number)) * W;
        const ky = ((boxes.values[b + k + 1] as number) / p.yScale + (anchors.y[c.index] as number)) * H;
        keypoints.push(g ? [inputToFrameX(g, kx), inputToFrameY(g, ky)] : [kx, ky]);
      }
      const label = scores.width > 1 ? (ctx.labels[c.classIndex] ?? String(c.classIndex)) : p.label;
      return {
        label,
        classIndex: c.classIndex,
        score: c.score,
        box: g ? inputBoxToFrame(g, c.x1, c.y1, c.x2, c.y2) : { x1: c.x1, y1: c.y1, x2: c.x2, y2: c.y2 },
        ...(keypoints.length > 0 ? { keypoints } : {}),
      };
    });
    return { detections, frame: frameOf(ctx) };
  }
}
