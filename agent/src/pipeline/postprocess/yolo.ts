import type { YoloParams } from '@perch/shared';
import { inputBoxToFrame } from '../preprocess/geometry';
import type { Detection, InferenceResult } from '../types';
import { frameOf } from './classification';
import { nms, type Candidate } from './nms';
import type { Outputs, PostContext, Postprocessor } from './types';
import { floats, labelOf, pickOutput, shapeError } from './util';

/**
 * YOLO heads as exported by Ultralytics:
 * - v5: [1, N, 5 + C]: cx, cy, w, h, objectness, C class scores; score = objectness * class score.
 * - v8 (and v11): [1, 4 + C, N]: cx, cy, w, h, C class scores, attribute-major.
 * Either may come transposed; the attribute axis is the one of size 4|5 + C when the labels give C, otherwise
 * the smaller one. Boxes are in input pixels (or 0..1 with `normalisedBoxes`) and are mapped to the frame.
 */
export class YoloPostprocessor implements Postprocessor {
  readonly outputNames?: readonly string[];

  constructor(private readonly params: YoloParams) {
    if (params.output) this.outputNames = [params.output];
  }

  process(outputs: Outputs, ctx: PostContext): InferenceResult {
    const p = this.params;
    const t = pickOutput(outputs, p.output, 'yolo');
    const dims =
      t.dims.length === 3 && t.dims[0] === 1 ? t.dims.slice(1) : t.dims.length === 2 ? t.dims : null;
    if (!dims) throw shapeError('yolo', t, '[1, N, attrs] or [1, attrs, N]');
    const [d0, d1] = dims as [number, number];
    const extra = p.version === 'v5' ? 5 : 4;
    const expected = ctx.labels.length > 0 ? ctx.labels.length + extra : undefined;
    let attrMajor: boolean;
    if (expected !== undefined && d0 === expected) attrMajor = true;
    else if (expected !== undefined && d1 === expected) attrMajor = false;
    else attrMajor = d0 < d1;
    const attrs = attrMajor ? d0 : d1;
    const n = attrMajor ? d1 : d0;
    const classes = attrs - extra;
    if (classes < 1) throw shapeError('yolo', t, `${extra} + classes attributes`);
    const v = floats(t, 'yolo');
    const at = attrMajor
      ? (i: number, a: number) => v[a * n + i] as number
      : (i: number, a: number) => v[i * attrs + a] as number;

    const g = ctx.geometry;
    const sx = p.normalisedBoxes && g ? g.inputWidth : 1;
    const sy = p.normalisedBoxes && g ? g.inputHeight : 1;
    const candidates: Candidate[] = [];
    for (let i = 0; i < n; i++) {
      const objectness = p.version === 'v5' ? at(i, 4) : 1;
      if (objectness < p.scoreThreshold) continue;
      let best = -1;
      let bestScore = -Infinity;
      for (let c = 0; c < classes; c++) {
        const s = at(i, extra + c);
        if (s > bestScore) {
          bestScore = s;
          best = c;
        }
      }
      const score = objectness * bestScore;
      if (score < p.scoreThreshold) continue;
      const cx = at(i, 0) * sx;
      const cy = at(i, 1) * sy;
      const w = at(i, 2) * sx;
      const h = at(i, 3) * sy;
      candidates.push({
        x1: cx - w / 2,
        y1: cy - h / 2,
        x2: cx + w / 2,
        y2: cy + h / 2,
        score,
        classIndex: best,
        index: i,
      });
    }
    const kept = nms(candidates, p.iouThreshold, p.maxDetections, !p.classAgnostic);
    const detections: Detection[] = kept.map((c) => ({
      label: labelOf(ctx.labels, c.classIndex),
      classIndex: c.classIndex,
      score: c.score,
      box: g ? inputBoxToFrame(g, c.x1, c.y1, c.x2, c.y2) : { x1: c.x1, y1: c.y1, x2: c.x2, y2: c.y2 },
    }));
    return { detections, frame: frameOf(ctx) };
  }
}
