import '../../../agent/test/pipeline/helpers/ort-realm';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { LoadedModel } from '../../../agent/src/pipeline/inference/model';
import { preprocessImage } from '../../../agent/src/pipeline/preprocess/image';
import { fixturePath } from '../../helpers/fixtures';

/** sharp renders SVG text with the system fonts; without any there is no text to classify. */
function hasFonts(): boolean {
  try {
    return execFileSync('fc-list', { encoding: 'utf8' }).trim().length > 0;
  } catch {
    return false;
  }
}

const maybe = hasFonts() ? describe : describe.skip;

/**
 * PP-OCR's text direction classifier (ch_ppocr_mobile_v2.0_cls): input x, NCHW 1x3x48x192, BGR,
 * (v/255 - 0.5)/0.5; output softmax over ['0', '180'].
 */
maybe('classification with a real model: PP-OCR text direction', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load({
      name: 'ppocr-cls',
      version: '2.0',
      model: fixturePath('ppocr_cls.onnx'),
      spec: {
        input: {
          kind: 'image',
          name: 'x',
          layout: 'NCHW',
          width: 192,
          height: 48,
          colour: 'BGR',
          resize: 'stretch',
          normalisation: { kind: 'meanStd', mean: 0.5, std: 0.5 },
        },
        postprocessor: { kind: 'classification', params: { topK: 2 } },
        labels: ['0', '180'],
      },
    });
  });
  afterAll(async () => {
    await model.release();
  });

  async function classify(png: Buffer) {
    if (model.spec.input.kind !== 'image') throw new Error('image model expected');
    const { tensor, geometry } = await preprocessImage(
      { kind: 'frame', data: png, ts: 0, seq: 0 },
      model.spec.input,
    );
    return model.postprocessor.process(await model.infer(tensor), { geometry, labels: model.labels })
      .detections;
  }

  it.each(['Hello World 2026', 'Delivery at door', 'Garage open'])(
    'reads "%s" as upright, and upside down when rotated',
    async (text) => {
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="384" height="96"><rect width="384" height="96" fill="white"/><text x="8" y="66" font-family="DejaVu Sans, sans-serif" font-size="40" fill="black">${text}</text></svg>`;
      const upright = await sharp(Buffer.from(svg)).png().toBuffer();
      const flipped = await sharp(upright).rotate(180).png().toBuffer();
      const a = await classify(upright);
      const b = await classify(flipped);
      expect(a.map((d) => d.label)).toEqual(['0', '180']);
      expect(b[0]).toMatchObject({ label: '180', classIndex: 1 });
      // The model ends in a softmax: 'auto' leaves its probabilities alone (they still sum to 1).
      expect(a[0]!.score + a[1]!.score).toBeCloseTo(1, 4);
      expect(a[0]!.score).toBeGreaterThan(0.5);
    },
  );
});
