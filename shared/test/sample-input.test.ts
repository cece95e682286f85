import { modelSpecSchema, resolveSampleDims, sampleInput } from '../src';

const spec = (input: Record<string, unknown>) =>
  modelSpecSchema.parse({ schemaVersion: 1, input, postprocessor: { kind: 'raw', params: {} } });

describe('sampleInput (the tensor sample.bin is read as)', () => {
  it('shapes an image sample by the spec layout and size, three channels, the spec dtype', () => {
    const image = { kind: 'image', name: 'in', width: 6, height: 4 };
    expect(sampleInput(spec({ ...image, layout: 'NHWC' }))).toEqual({
      name: 'in',
      dtype: 'float32',
      dims: [1, 4, 6, 3],
      bytes: 4 * 6 * 3 * 4,
    });
    expect(sampleInput(spec({ ...image, layout: 'NCHW', dtype: 'uint8' }))).toEqual({
      name: 'in',
      dtype: 'uint8',
      dims: [1, 3, 4, 6],
      bytes: 72,
    });
  });

  it('shapes an audio sample as one float32 window', () => {
    expect(sampleInput(spec({ kind: 'audio', name: 'input', windowSamples: 512 }))).toMatchObject({
      dims: [1, 512],
      bytes: 2048,
    });
  });

  it("fills a tensor spec's -1 from the model's fixed dim there, else 1", () => {
    const s = spec({ kind: 'tensor', name: 't', shape: [-1, 8], dtype: 'uint8' });
    expect(sampleInput(s, ['batch', 8])).toMatchObject({ dims: [1, 8], bytes: 8 });
    expect(sampleInput(s, [4, 8])).toMatchObject({ dims: [4, 8], bytes: 32 });
    expect(resolveSampleDims([2, -1, 3], [2, 0, 3])).toEqual([2, 1, 3]);
  });
});
