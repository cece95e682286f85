import './helpers/ort-realm';
import sharp from 'sharp';
import type { ModelSpecInput } from '@perch/shared';
import { LoadedModel } from '../../src/pipeline/inference/model';
import { preprocessImage } from '../../src/pipeline/preprocess/image';
import { ClassificationPostprocessor, softmax } from '../../src/pipeline/postprocess/classification';
import { generateAnchors, ANCHOR_PRESETS } from '../../src/pipeline/postprocess/anchors';
import { nms } from '../../src/pipeline/postprocess/nms';
import { RawPostprocessor } from '../../src/pipeline/postprocess/raw';
import type { Frame, InferenceResult } from '../../src/pipeline/types';
import { constantOutputModel } from './helpers/onnx-builder';

const LABELS = ['person', 'car'];
/** Boxes in 64x64 input pixels: [cx, cy, w, h, person, car]. */
const BOXES = [
  [20, 30, 10, 10, 0.9, 0.05],
  [21, 30, 10, 10, 0.8, 0.1], // overlaps box 0, same class: suppressed
  [21, 30, 10, 10, 0.1, 0.7], // overlaps box 0, other class: kept unless class-agnostic
  [50, 40, 8, 8, 0.05, 0.1], // below the threshold
  [50, 40, 8, 8, 0.6, 0.2],
];

function v8Values(): number[] {
  const n = BOXES.length;
  const out = new Array<number>(6 * n);
  BOXES.forEach((b, i) => b.forEach((v, a) => (out[a * n + i] = v)));
  return out;
}

function v5Values(): number[] {
  // objectness 1 for all but the last, whose class score 1 and objectness 0.6 give the same 0.6.
  return BOXES.flatMap((b, i) =>
    i === 4 ? [b[0]!, b[1]!, b[2]!, b[3]!, 0.6, 1, 0.2] : [b[0]!, b[1]!, b[2]!, b[3]!, 1, b[4]!, b[5]!],
  );
}

function yoloBundle(
  version: 'v5' | 'v8',
  dims: number[],
  values: number[],
  params: Record<string, unknown> = {},
) {
  const spec: ModelSpecInput = {
    input: {
      kind: 'image',
      name: 'images',
      layout: 'NCHW',
      width: 64,
      height: 64,
      resize: 'letterbox',
      normalisation: { kind: 'scaleOffset', scale: 1 / 255 },
    },
    postprocessor: { kind: 'yolo', params: { version, scoreThreshold: 0.25, iouThreshold: 0.45, ...params } },
    labels: LABELS,
  };
  const model = constantOutputModel({
    input: { name: 'images', shape: [1, 3, 64, 64] },
    outputName: 'output0',
    dims,
    values,
  });
  return { name: 'yolo-test', version: '1', model, spec };
}

/** A 128x64 frame: letterboxed into 64x64 with scale 0.5 and 16-pixel bars top and bottom. */
async function wideFrame(): Promise<Frame> {
  const data = await sharp({ create: { width: 128, height: 64, channels: 3, background: '#404040' } })
    .jpeg()
    .toBuffer();
  return { kind: 'frame', data, ts: 0, seq: 0 };
}

async function run(bundle: ReturnType<typeof yoloBundle>): Promise<InferenceResult> {
  const model = await LoadedModel.load(bundle);
  try {
    if (model.spec.input.kind !== 'image') throw new Error('image');
    const { tensor, geometry } = await preprocessImage(await wideFrame(), model.spec.input);
    return model.postprocessor.process(await model.infer(tensor), { geometry, labels: model.labels });
  } finally {
    await model.release();
  }
}

const round = (r: InferenceResult) =>
  r.detections.map((d) => ({
    label: d.label,
    score: Number(d.score.toFixed(3)),
    box: d.box && [d.box.x1, d.box.y1, d.box.x2, d.box.y2].map((v) => Math.round(v)),
  }));

describe('YOLO postprocessor on a synthetic ONNX model with a known output', () => {
  const expected = [
    { label: 'person', score: 0.9, box: [30, 18, 50, 38] },
    { label: 'car', score: 0.7, box: [32, 18, 52, 38] },
    { label: 'person', score: 0.6, box: [92, 40, 108, 56] },
  ];

  it('decodes the v8 layout [1, 4+C, N] with class-aware NMS, boxes in frame pixels', async () => {
    expect(round(await run(yoloBundle('v8', [1, 6, 5], v8Values())))).toEqual(expected);
  });

  it('decodes the v5 layout [1, N, 5+C] (score = objectness x class score) to the same boxes', async () => {
    expect(round(await run(yoloBundle('v5', [1, 5, 7], v5Values())))).toEqual(expected);
  });

  it('accepts a transposed v8 output [1, N, 4+C]', async () => {
    expect(round(await run(yoloBundle('v8', [1, 5, 6], BOXES.flat())))).toEqual(expected);
  });

  it('suppresses across classes when class-agnostic', async () => {
    const r = round(await run(yoloBundle('v8', [1, 6, 5], v8Values(), { classAgnostic: true })));
    expect(r.map((d) => d.label)).toEqual(['person', 'person']);
  });

  it('caps the number of detections', async () => {
    const r = await run(yoloBundle('v8', [1, 6, 5], v8Values(), { maxDetections: 1 }));
    expect(r.detections).toHaveLength(1);
  });
});

describe('classification', () => {
  const pp = (params: Partial<{ softmax: boolean | 'auto'; topK: number; minScore: number }> = {}) =>
    new ClassificationPostprocessor({ softmax: 'auto', topK: 2, minScore: 0, ...params });
  const out = (values: number[]) => ({
    logits: { dims: [1, values.length], type: 'float32', data: Float32Array.from(values) },
  });

  it('applies softmax to logits and returns the top k with labels', () => {
    const r = pp().process(out([1, 3, 2]), { labels: ['cat', 'dog', 'bird'] });
    expect(r.detections.map((d) => d.label)).toEqual(['dog', 'bird']);
    const p = softmax([1, 3, 2]);
    expect(r.detections[0]!.score).toBeCloseTo(p[1]!, 6);
  });

  it('leaves probabilities alone in auto mode, and names unlabelled classes by index', () => {
    const r = pp({ topK: 1 }).process(out([0.1, 0.2, 0.7]), { labels: [] });
    expect(r.detections).toEqual([{ label: '2', classIndex: 2, score: expect.closeTo(0.7, 6) as number }]);
  });

  it('drops classes under the minimum score', () => {
    const r = pp({ topK: 3, minScore: 0.25 }).process(out([0.1, 0.2, 0.7]), { labels: [] });
    expect(r.detections).toHaveLength(1);
  });

  it('reports a wrong output shape as E_PIPELINE_POSTPROCESS', () => {
    expect(() =>
      pp().process({ y: { dims: [2, 3], type: 'float32', data: new Float32Array(6) } }, { labels: [] }),
    ).toThrow(expect.objectContaining({ code: 'E_PIPELINE_POSTPROCESS' }));
  });
});

describe('NMS and anchors', () => {
  it('keeps overlapping boxes of different classes and drops same-class ones', () => {
    const c = (x: number, score: number, classIndex: number, index: number) => ({
      x1: x,
      y1: 0,
      x2: x + 10,
      y2: 10,
      score,
      classIndex,
      index,
    });
    const kept = nms([c(0, 0.9, 0, 0), c(1, 0.8, 0, 1), c(1, 0.7, 1, 2), c(50, 0.5, 0, 3)], 0.5, 10);
    expect(kept.map((k) => k.index)).toEqual([0, 2, 3]);
  });

  it('lays out BlazeFace front-128 anchors as 16x16x2 + 8x8x6 = 896', () => {
    const a = generateAnchors(ANCHOR_PRESETS['blazeface-front-128'], 128, 128);
    expect(a.count).toBe(896);
    expect([a.x[0], a.y[0], a.x[1]]).toEqual([0.5 / 16, 0.5 / 16, 0.5 / 16]);
    expect(a.x[2]).toBeCloseTo(1.5 / 16);
    expect(a.x[512]).toBeCloseTo(0.5 / 8);
    expect(a.x[517]).toBeCloseTo(0.5 / 8);
    expect(a.x[518]).toBeCloseTo(1.5 / 8);
    expect(a.y[895]).toBeCloseTo(7.5 / 8);
  });
});

describe('raw', () => {
  it('reports statistics of each output tensor', () => {
    const r = new RawPostprocessor({}).process({
      y: { dims: [1, 4], type: 'float32', data: Float32Array.from([1, 3, NaN, -1]) },
    });
    expect(r.detections).toEqual([]);
    expect(r.tensors).toEqual([
      {
        name: 'y',
        dims: [1, 4],
        type: 'float32',
        min: -1,
        max: 3,
        mean: 1,
        std: expect.closeTo(Math.sqrt(8 / 3), 6) as number,
        argmax: 1,
        nonFinite: 1,
      },
    ]);
  });
});
