import sharp from 'sharp';
import { JpegSplitter } from '../../src/sources/jpeg-splitter';

/** A small noisy JPEG, so that most of its bytes are entropy-coded data. */
async function jpeg(seed: number): Promise<Buffer> {
  return sharp({
    create: {
      width: 48,
      height: 32,
      channels: 3,
      background: '#000000',
      noise: { type: 'gaussian', mean: seed % 200, sigma: 40 },
    },
  })
    .jpeg()
    .toBuffer();
}

/** A JPEG with an APP1 segment whose payload holds FF D9 and FF D8, as EXIF thumbnails do. */
function withTrickySegment(img: Buffer): Buffer {
  const payload = Buffer.from([0x45, 0x78, 0x69, 0x66, 0x00, 0x00, 0xff, 0xd9, 0xff, 0xd8, 0xff, 0xd9]);
  const len = payload.length + 2;
  const seg = Buffer.concat([Buffer.from([0xff, 0xe1, len >> 8, len & 0xff]), payload]);
  return Buffer.concat([img.subarray(0, 2), seg, img.subarray(2)]);
}

function feed(split: JpegSplitter, stream: Buffer, chunk: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += chunk) out.push(...split.push(stream.subarray(i, i + chunk)));
  return out;
}

describe('JpegSplitter', () => {
  it('returns each image of a concatenated stream whole, whatever the chunk size', async () => {
    const images = [await jpeg(10), await jpeg(120), await jpeg(250)];
    const stream = Buffer.concat(images);
    for (const chunk of [1, 2, 7, 64, 1000, stream.length]) {
      const frames = feed(new JpegSplitter(), stream, chunk);
      expect(frames).toHaveLength(3);
      frames.forEach((f, i) => expect(f.equals(images[i]!)).toBe(true));
    }
  });

  it('is not fooled by FF D9 inside a segment payload', async () => {
    const img = withTrickySegment(await jpeg(1));
    const frames = feed(new JpegSplitter(), Buffer.concat([img, img]), 5);
    expect(frames).toHaveLength(2);
    expect(frames[0]!.equals(img)).toBe(true);
    const meta = await sharp(frames[1]!).metadata();
    expect(meta.width).toBe(48);
  });

  it('skips garbage between images', async () => {
    const img = await jpeg(5);
    const stream = Buffer.concat([Buffer.from('noise\xff\x00'), img, Buffer.from([0xff, 0xff, 0x12]), img]);
    expect(feed(new JpegSplitter(), stream, 3)).toHaveLength(2);
  });

  it('counts an image cut short by the start of the next one as corrupt and keeps the next', async () => {
    const img = await jpeg(7);
    const split = new JpegSplitter();
    const frames = feed(split, Buffer.concat([img.subarray(0, img.length - 40), img]), 11);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.equals(img)).toBe(true);
    expect(split.counters.corrupt).toBe(1);
  });

  it('abandons an image larger than the limit without holding it', async () => {
    const img = await jpeg(9);
    const split = new JpegSplitter(img.length - 1);
    expect(feed(split, Buffer.concat([img, img]), 100)).toHaveLength(0);
    expect(split.counters.oversized).toBe(2);
  });

  it('forgets a partial image on reset', async () => {
    const img = await jpeg(3);
    const split = new JpegSplitter();
    split.push(img.subarray(0, 100));
    split.reset();
    expect(split.push(img)).toHaveLength(1);
  });
});
