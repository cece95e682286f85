import sharp from 'sharp';
import type { ErrorCode } from '@perch/shared';
import { JpegSplitter } from './jpeg-splitter';

/**
 * Checks a still image before it enters the pipeline, cheaply: the format from its magic bytes, the
 * container structure (a JPEG must parse to exactly one whole image, a PNG must end with IEND) so that a
 * half-written or truncated file is caught without decoding every pixel, then sharp reads the header.
 */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

export type ImageCheck =
  | { ok: true; format: ImageFormat; width: number; height: number }
  | { ok: false; code: ErrorCode; message: string };

export function sniffFormat(buf: Buffer): ImageFormat | undefined {
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpeg';
  if (buf.length >= 8 && buf.subarray(0, 8).equals(PNG_MAGIC)) return 'png';
  if (
    buf.length >= 12 &&
    buf.toString('latin1', 0, 4) === 'RIFF' &&
    buf.toString('latin1', 8, 12) === 'WEBP'
  ) {
    return 'webp';
  }
  if (buf.length >= 6 && /^GIF8[79]a$/.test(buf.toString('latin1', 0, 6))) return 'gif';
  if (
    buf.length >= 4 &&
    (buf.toString('latin1', 0, 4) === 'II*\u0000' || buf.toString('latin1', 0, 4) === 'MM\u0000*')
  ) {
    return 'tiff';
  }
  if (
    buf.length >= 12 &&
    buf.toString('latin1', 4, 8) === 'ftyp' &&
    /^avi[fs]$/.test(buf.toString('latin1', 8, 12))
  ) {
    return 'avif';
  }
  return undefined;
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_IEND = Buffer.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

function structureProblem(format: ImageFormat, buf: Buffer): string | undefined {
  if (format === 'jpeg') {
    const split = new JpegSplitter(buf.length + 16);
    const frames = split.push(buf);
    if (frames.length === 0) return 'JPEG ends before its end-of-image marker (truncated?)';
    return undefined;
  }
  if (format === 'png') {
    if (buf.indexOf(PNG_IEND, Math.max(8, buf.length - 64)) < 0)
      return 'PNG has no IEND chunk at its end (truncated?)';
    return undefined;
  }
  if (format === 'webp') {
    const declared = buf.readUInt32LE(4) + 8;
    if (buf.length < declared)
      return `WebP is shorter (${buf.length}) than its RIFF header says (${declared})`;
  }
  return undefined;
}

export async function checkImage(buf: Buffer): Promise<ImageCheck> {
  const format = sniffFormat(buf);
  if (!format)
    return {
      ok: false,
      code: 'E_SOURCE_IMAGE_FORMAT',
      message: 'not a JPEG, PNG, WebP, GIF, TIFF or AVIF image',
    };
  const problem = structureProblem(format, buf);
  if (problem) return { ok: false, code: 'E_SOURCE_IMAGE_CORRUPT', message: problem };
  try {
    const meta = await sharp(buf, { failOn: 'error' }).metadata();
    if (!meta.width || !meta.height) {
      return { ok: false, code: 'E_SOURCE_IMAGE_CORRUPT', message: `${format} header has no size` };
    }
    return { ok: true, format, width: meta.width, height: meta.height };
  } catch (err) {
    return {
      ok: false,
      code: 'E_SOURCE_IMAGE_CORRUPT',
      message: `${format} cannot be read: ${(err as Error).message}`,
    };
  }
}
