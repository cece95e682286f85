import sharp from 'sharp';
import type { ImageInputSpec } from '@perch/shared';
import { PerchError } from '@perch/shared';
import type { Frame } from '../types';
import { computeGeometry, type Geometry } from './geometry';
import { headerSize } from './header-size';
import { pixelsToTensor, type TensorData } from './tensor';

export interface PreparedImage {
  readonly tensor: TensorData;
  readonly geometry: Geometry;
}

export interface FrameSize {
  readonly width: number;
  readonly height: number;
}

/** The frame's pixel size: from `raw`, from a JPEG/PNG header parsed here, or from sharp (no pixel decode). */
export async function frameSize(frame: Frame): Promise<FrameSize> {
  if (frame.raw) return { width: frame.raw.width, height: frame.raw.height };
  const fromHeader = headerSize(frame.data);
  if (fromHeader) return fromHeader;
  let meta: sharp.Metadata;
  try {
    meta = await sharp(frame.data).metadata();
  } catch (err) {
    throw decodeError(frame, err);
  }
  if (!meta.width || !meta.height) throw decodeError(frame, new Error('image has no size'));
  return { width: meta.width, height: meta.height };
}

/** A sharp instance over the frame's bytes, encoded or raw. EXIF orientation is not applied: cameras
 * do not set it and boxes must stay in the frame's stored pixel grid. */
export function openFrame(frame: Frame): sharp.Sharp {
  if (frame.raw) {
    const { width, height, channels } = frame.raw;
    if (frame.data.length < width * height * channels) {
      throw new PerchError(
        'E_PIPELINE_DECODE',
        `raw frame ${frame.seq} is shorter than ${width}x${height}x${channels}`,
      );
    }
    return sharp(frame.data, { raw: { width, height, channels } });
  }
  return sharp(frame.data);
}

/**
 * Decode, resize (stretch / letterbox / centre crop), order the colours and lay out the tensor as the spec
 * says. Throws E_PIPELINE_DECODE for data sharp cannot read.
 */
export async function preprocessImage(
  frame: Frame,
  spec: ImageInputSpec,
  size?: FrameSize,
): Promise<PreparedImage> {
  const { width: fw, height: fh } = size ?? (await frameSize(frame));
  const g = computeGeometry(spec.resize, fw, fh, spec.width, spec.height);
  let img = openFrame(frame);
  if (spec.resize === 'crop') {
    img = img.extract({ left: g.cropX, top: g.cropY, width: g.cropWidth, height: g.cropHeight });
  }
  img = img.resize(g.resizedWidth, g.resizedHeight, { fit: 'fill' });
  if (spec.resize === 'letterbox') {
    const [r, gr, b] = spec.padColour;
    img = img.extend({
      left: g.padX,
      top: g.padY,
      right: spec.width - g.resizedWidth - g.padX,
      bottom: spec.height - g.resizedHeight - g.padY,
      background: { r, g: gr, b, alpha: 1 },
    });
  }
  let pixels: { data: Buffer; info: sharp.OutputInfo };
  try {
    pixels = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(frame, err);
  }
  const { info } = pixels;
  if (info.width !== spec.width || info.height !== spec.height) {
    throw new PerchError(
      'E_PIPELINE_DECODE',
      `frame ${frame.seq} resized to ${info.width}x${info.height}, not ${spec.width}x${spec.height}`,
    );
  }
  return { tensor: pixelsToTensor(pixels.data, info.channels, spec), geometry: g };
}

function decodeError(frame: Frame, err: unknown): PerchError {
  const reason = err instanceof Error ? err.message : String(err);
  return new PerchError(
    'E_PIPELINE_DECODE',
    `frame ${frame.seq} could not be decoded: ${reason}`,
    undefined,
    { cause: err },
  );
}
