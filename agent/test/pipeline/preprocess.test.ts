import sharp from 'sharp';
import { imageInputSchema } from '@perch/shared';
import { computeGeometry, inputBoxToFrame } from '../../src/pipeline/preprocess/geometry';
import { preprocessImage } from '../../src/pipeline/preprocess/image';
import { pixelsToTensor } from '../../src/pipeline/preprocess/tensor';
import { AudioWindower } from '../../src/pipeline/preprocess/audio';
import { resolveShape } from '../../src/pipeline/preprocess/sensor';
import { headerSize } from '../../src/pipeline/preprocess/header-size';
import type { Frame } from '../../src/pipeline/types';

const spec = (over: Record<string, unknown>) =>
  imageInputSchema.parse({ kind: 'image', name: 'x', layout: 'NCHW', width: 2, height: 1, ...over });

/** A 2x1 image: a red pixel then a blue one. */
const RED_BLUE = Uint8Array.from([255, 0, 0, 0, 0, 255]);

describe('pixelsToTensor', () => {
  it('lays out NCHW planes in RGB order', () => {
    const t = pixelsToTensor(RED_BLUE, 3, spec({}));
    expect(t.dims).toEqual([1, 3, 1, 2]);
    expect(Array.from(t.data as Float32Array)).toEqual([255, 0, 0, 0, 0, 255]);
  });

  it('interleaves NHWC and swaps to BGR', () => {
    const t = pixelsToTensor(RED_BLUE, 3, spec({ layout: 'NHWC', colour: 'BGR' }));
    expect(t.dims).toEqual([1, 1, 2, 3]);
    expect(Array.from(t.data as Float32Array)).toEqual([0, 0, 255, 255, 0, 0]);
  });

  it('normalises with mean/std on the 0..1 scale and with scale/offset on 0..255', () => {
    const ms = pixelsToTensor(
      RED_BLUE,
      3,
      spec({ normalisation: { kind: 'meanStd', mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5] } }),
    );
    expect(Array.from(ms.data as Float32Array).map((v) => Number(v.toFixed(4)))).toEqual([
      1, -1, -2, -2, -1, 1,
    ]);
    const so = pixelsToTensor(
      RED_BLUE,
      3,
      spec({ normalisation: { kind: 'scaleOffset', scale: 1 / 127.5, offset: -1 } }),
    );
    expect(Array.from(so.data as Float32Array).map((v) => Number(v.toFixed(4)))).toEqual([
      1, -1, -1, -1, -1, 1,
    ]);
  });

  it('copies bytes for uint8 inputs and repeats grey into three channels', () => {
    const t = pixelsToTensor(Uint8Array.from([10, 20]), 1, spec({ dtype: 'uint8', layout: 'NHWC' }));
    expect(t.type).toBe('uint8');
    expect(Array.from(t.data as Uint8Array)).toEqual([10, 10, 10, 20, 20, 20]);
  });
});

describe('geometry', () => {
  it('letterboxes a 16:9 frame into a square with bars top and bottom and maps boxes back', () => {
    const g = computeGeometry('letterbox', 1920, 1080, 640, 640);
    expect(g.resizedWidth).toBe(640);
    expect(g.resizedHeight).toBe(360);
    expect(g.padX).toBe(0);
    expect(g.padY).toBe(140);
    const b = inputBoxToFrame(g, 320, 140, 640, 500);
    expect(b).toEqual({ x1: 960, y1: 0, x2: 1920, y2: 1080 });
  });

  it('centre-crops to the input aspect and maps boxes back with the crop offset', () => {
    const g = computeGeometry('crop', 1920, 1080, 640, 640);
    expect(g.cropWidth).toBe(1080);
    expect(g.cropX).toBe(420);
    const b = inputBoxToFrame(g, 0, 0, 640, 640);
    expect(b).toEqual({ x1: 420, y1: 0, x2: 1500, y2: 1080 });
  });

  it('stretches with separate scales per axis', () => {
    const g = computeGeometry('stretch', 200, 100, 100, 100);
    expect(inputBoxToFrame(g, 50, 50, 100, 100)).toEqual({ x1: 100, y1: 50, x2: 200, y2: 100 });
  });
});

describe('preprocessImage with sharp', () => {
  async function frame(
    width: number,
    height: number,
    colour: { r: number; g: number; b: number },
  ): Promise<Frame> {
    const data = await sharp({ create: { width, height, channels: 3, background: colour } })
      .png()
      .toBuffer();
    return { kind: 'frame', data, ts: 0, seq: 0 };
  }

  it('letterboxes a wide image: pad colour in the bars, the image in the middle', async () => {
    const f = await frame(40, 20, { r: 255, g: 0, b: 0 });
    const { tensor, geometry } = await preprocessImage(
      f,
      spec({ width: 8, height: 8, resize: 'letterbox', padColour: [0, 0, 255] }),
    );
    expect(geometry.padY).toBe(2);
    const d = tensor.data as Float32Array;
    const at = (c: number, y: number, x: number) => d[c * 64 + y * 8 + x];
    expect([at(0, 0, 4), at(2, 0, 4)]).toEqual([0, 255]); // bar: blue
    expect([at(0, 4, 4), at(2, 4, 4)]).toEqual([255, 0]); // image: red
  });

  it('decodes raw RGB frames and rejects short ones with E_PIPELINE_DECODE', async () => {
    const raw: Frame = {
      kind: 'frame',
      data: Buffer.from(RED_BLUE),
      raw: { width: 2, height: 1, channels: 3 },
      ts: 0,
      seq: 1,
    };
    const { tensor } = await preprocessImage(raw, spec({}));
    expect(Array.from(tensor.data as Float32Array)).toEqual([255, 0, 0, 0, 0, 255]);
    const short: Frame = { ...raw, data: Buffer.alloc(3) };
    await expect(preprocessImage(short, spec({}))).rejects.toMatchObject({ code: 'E_PIPELINE_DECODE' });
  });

  it('turns corrupt JPEG bytes into E_PIPELINE_DECODE', async () => {
    const good = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#888' } })
      .jpeg()
      .toBuffer();
    const corrupt: Frame = {
      kind: 'frame',
      data: Buffer.concat([good.subarray(0, 20), Buffer.alloc(50, 7)]),
      ts: 0,
      seq: 2,
    };
    await expect(preprocessImage(corrupt, spec({ width: 8, height: 8 }))).rejects.toMatchObject({
      code: 'E_PIPELINE_DECODE',
    });
    const garbage: Frame = { kind: 'frame', data: Buffer.from('not an image at all'), ts: 0, seq: 3 };
    await expect(preprocessImage(garbage, spec({}))).rejects.toMatchObject({ code: 'E_PIPELINE_DECODE' });
  });
});

describe('audio and sensor inputs', () => {
  it('re-cuts audio into model windows, carrying the remainder to the next item', () => {
    const w = new AudioWindower({ kind: 'audio', name: 'input', sampleRate: 16000, windowSamples: 4 });
    const a = w.push({
      kind: 'audio',
      samples: Float32Array.from([1, 2, 3, 4, 5, 6]),
      sampleRate: 16000,
      ts: 0,
      seq: 0,
    });
    expect(a.map((t) => Array.from(t.data as Float32Array))).toEqual([[1, 2, 3, 4]]);
    const b = w.push({
      kind: 'audio',
      samples: Float32Array.from([7, 8, 9]),
      sampleRate: 16000,
      ts: 0,
      seq: 1,
    });
    expect(b.map((t) => Array.from(t.data as Float32Array))).toEqual([[5, 6, 7, 8]]);
    expect(() =>
      w.push({ kind: 'audio', samples: new Float32Array(4), sampleRate: 8000, ts: 0, seq: 2 }),
    ).toThrow(expect.objectContaining({ code: 'E_PIPELINE_INPUT_KIND' }));
  });

  it('resolves one -1 in a sensor shape and refuses values that do not fit', () => {
    expect(resolveShape([1, -1, 3], 12)).toEqual([1, 4, 3]);
    expect(() => resolveShape([1, -1, 3], 10)).toThrow(
      expect.objectContaining({ code: 'E_PIPELINE_SPEC_MISMATCH' }),
    );
    expect(() => resolveShape([2, 2], 5)).toThrow(
      expect.objectContaining({ code: 'E_PIPELINE_SPEC_MISMATCH' }),
    );
  });
});

describe('headerSize', () => {
  it('reads JPEG (baseline and progressive) and PNG sizes as sharp does, and gives up on anything else', async () => {
    const base = sharp({ create: { width: 33, height: 17, channels: 3, background: '#123456' } });
    for (const buf of [
      await base.clone().jpeg().toBuffer(),
      await base.clone().jpeg({ progressive: true }).toBuffer(),
      await base.clone().png().toBuffer(),
    ]) {
      expect(headerSize(buf)).toEqual({ width: 33, height: 17 });
    }
    expect(headerSize(await base.clone().webp().toBuffer())).toBeUndefined();
    expect(headerSize(Buffer.from([0xff, 0xd8, 0xff]))).toBeUndefined();
    expect(headerSize(Buffer.from('hello world, not an image'))).toBeUndefined();
  });
});
