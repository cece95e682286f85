import '../../../agent/test/pipeline/helpers/ort-realm';
import fs from 'node:fs';
import sharp from 'sharp';
import { LoadedModel, preprocessImage, type Frame, type InferenceResult } from '../../../agent/src/pipeline';
import { blazefaceBundle, facePhotos } from './helpers';

function frameOf(data: Buffer, seq = 0): Frame {
  return { kind: 'frame', data, ts: Date.now(), seq };
}

async function detect(model: LoadedModel, frame: Frame): Promise<InferenceResult> {
  if (model.spec.input.kind !== 'image') throw new Error('image model expected');
  const { tensor, geometry } = await preprocessImage(frame, model.spec.input);
  const outputs = await model.infer(tensor);
  return model.postprocessor.process(outputs, { geometry, labels: model.labels });
}

describe('BlazeFace front 128 on real photographs', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load(blazefaceBundle(), { intraOpThreads: 1 });
  });
  afterAll(async () => {
    await model.release();
  });

  it('reports the CPU provider it runs on', () => {
    expect(model.provider).toBe('cpu');
  });

  it('finds faces in every sample photograph, with boxes inside the frame', async () => {
    const photos = facePhotos();
    expect(photos.length).toBeGreaterThanOrEqual(3);
    for (const file of photos) {
      const data = fs.readFileSync(file);
      const meta = await sharp(data).metadata();
      const result = await detect(model, frameOf(data));
      expect(result.frame).toEqual({ width: meta.width, height: meta.height });
      expect(result.detections.length).toBeGreaterThanOrEqual(1);
      for (const d of result.detections) {
        expect(d.label).toBe('face');
        expect(d.score).toBeGreaterThanOrEqual(0.6);
        const b = d.box!;
        expect(b.x1).toBeGreaterThanOrEqual(0);
        expect(b.y1).toBeGreaterThanOrEqual(0);
        expect(b.x2).toBeLessThanOrEqual(meta.width!);
        expect(b.y2).toBeLessThanOrEqual(meta.height!);
        // A face in these photographs is tens to hundreds of pixels wide, in frame pixels (not 128-space).
        expect(b.x2 - b.x1).toBeGreaterThan(40);
        expect(b.y2 - b.y1).toBeGreaterThan(40);
        expect(d.keypoints).toHaveLength(6);
      }
    }
  });

  it('finds the three faces of sample1 at their places in the frame', async () => {
    const data = fs.readFileSync(facePhotos()[0]!);
    const result = await detect(model, frameOf(data));
    const centres = result.detections.map((d) => [
      (d.box!.x1 + d.box!.x2) / 2 / 1920,
      (d.box!.y1 + d.box!.y2) / 2 / 1280,
    ]);
    // Where the three women's faces are (normalised), read off the photograph.
    const expected = [
      [0.255, 0.37],
      [0.485, 0.44],
      [0.84, 0.235],
    ];
    expect(centres).toHaveLength(3);
    for (const [ex, ey] of expected) {
      expect(centres.some(([x, y]) => Math.abs(x! - ex!) < 0.05 && Math.abs(y! - ey!) < 0.05)).toBe(true);
    }
  });

  it('finds the same faces when the photograph is cropped out of a larger canvas (boxes map back)', async () => {
    const data = fs.readFileSync(facePhotos()[0]!);
    const direct = await detect(model, frameOf(data));
    const best = [...direct.detections].sort((a, b) => b.score - a.score)[0]!;
    // The photograph pasted at (300, 200) on a grey 2520x1680 canvas: the same face must come out shifted.
    const canvas = await sharp({
      create: { width: 2520, height: 1680, channels: 3, background: { r: 128, g: 128, b: 128 } },
    })
      .composite([{ input: data, left: 300, top: 200 }])
      .jpeg()
      .toBuffer();
    const shifted = await detect(model, frameOf(canvas));
    const match = shifted.detections.find(
      (d) =>
        Math.abs((d.box!.x1 + d.box!.x2) / 2 - ((best.box!.x1 + best.box!.x2) / 2 + 300)) < 40 &&
        Math.abs((d.box!.y1 + d.box!.y2) / 2 - ((best.box!.y1 + best.box!.y2) / 2 + 200)) < 40,
    );
    expect(match).toBeDefined();
  });

  it('finds nothing in blank and noise images', async () => {
    const blank = await sharp({
      create: { width: 1280, height: 720, channels: 3, background: { r: 200, g: 200, b: 200 } },
    })
      .jpeg()
      .toBuffer();
    const noisePx = Buffer.alloc(640 * 480 * 3);
    let seed = 12345;
    for (let i = 0; i < noisePx.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      noisePx[i] = seed >> 23;
    }
    const noise = await sharp(noisePx, { raw: { width: 640, height: 480, channels: 3 } })
      .png()
      .toBuffer();
    expect((await detect(model, frameOf(blank))).detections).toEqual([]);
    expect((await detect(model, frameOf(noise))).detections).toEqual([]);
    // Raw RGB frames (as a camera source hands them over) work as well.
    const raw: Frame = {
      kind: 'frame',
      data: noisePx,
      raw: { width: 640, height: 480, channels: 3 },
      ts: 0,
      seq: 1,
    };
    expect((await detect(model, raw)).detections).toEqual([]);
  });
});
