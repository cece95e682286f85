import type { ResizeMode } from '@perch/shared';
import type { Box } from '../types';

/**
 * How a frame was placed into the model input, so that boxes found in input pixels map back to the frame:
 * frame = (input - pad) / scale + crop offset.
 */
export interface Geometry {
  readonly frameWidth: number;
  readonly frameHeight: number;
  readonly inputWidth: number;
  readonly inputHeight: number;
  /** Input pixels per frame pixel, per axis (equal for letterbox and crop). */
  readonly scaleX: number;
  readonly scaleY: number;
  /** Letterbox bars (input pixels) on the left and top. */
  readonly padX: number;
  readonly padY: number;
  /** Centre-crop window (frame pixels): what was kept of the frame. */
  readonly cropX: number;
  readonly cropY: number;
  readonly cropWidth: number;
  readonly cropHeight: number;
  /** Size the frame (or crop) was resized to before padding (input pixels). */
  readonly resizedWidth: number;
  readonly resizedHeight: number;
}

export function computeGeometry(
  mode: ResizeMode,
  frameWidth: number,
  frameHeight: number,
  inputWidth: number,
  inputHeight: number,
): Geometry {
  const base = { frameWidth, frameHeight, inputWidth, inputHeight };
  if (mode === 'stretch') {
    return {
      ...base,
      scaleX: inputWidth / frameWidth,
      scaleY: inputHeight / frameHeight,
      padX: 0,
      padY: 0,
      cropX: 0,
      cropY: 0,
      cropWidth: frameWidth,
      cropHeight: frameHeight,
      resizedWidth: inputWidth,
      resizedHeight: inputHeight,
    };
  }
  if (mode === 'letterbox') {
    const scale = Math.min(inputWidth / frameWidth, inputHeight / frameHeight);
    const resizedWidth = Math.max(1, Math.min(inputWidth, Math.round(frameWidth * scale)));
    const resizedHeight = Math.max(1, Math.min(inputHeight, Math.round(frameHeight * scale)));
    return {
      ...base,
      scaleX: resizedWidth / frameWidth,
      scaleY: resizedHeight / frameHeight,
      padX: Math.floor((inputWidth - resizedWidth) / 2),
      padY: Math.floor((inputHeight - resizedHeight) / 2),
      cropX: 0,
      cropY: 0,
      cropWidth: frameWidth,
      cropHeight: frameHeight,
      resizedWidth,
      resizedHeight,
    };
  }
  // crop: the largest centred window of the input's aspect ratio, then resized to the input size.
  const scale = Math.max(inputWidth / frameWidth, inputHeight / frameHeight);
  const cropWidth = Math.max(1, Math.min(frameWidth, Math.round(inputWidth / scale)));
  const cropHeight = Math.max(1, Math.min(frameHeight, Math.round(inputHeight / scale)));
  return {
    ...base,
    scaleX: inputWidth / cropWidth,
    scaleY: inputHeight / cropHeight,
    padX: 0,
    padY: 0,
    cropX: Math.floor((frameWidth - cropWidth) / 2),
    cropY: Math.floor((frameHeight - cropHeight) / 2),
    cropWidth,
    cropHeight,
    resizedWidth: inputWidth,
    resizedHeight: inputHeight,
  };
}

export function inputToFrameX(g: Geometry, x: number): number {
  return (x - g.padX) / g.scaleX + g.cropX;
}

export function inputToFrameY(g: Geometry, y: number): number {
  return (y - g.padY) / g.scaleY + g.cropY;
}

/** A box in input pixels -> frame pixels, clipped to the frame. */
export function inputBoxToFrame(g: Geometry, x1: number, y1: number, x2: number, y2: number): Box {
  const clampX = (v: number) => Math.min(g.frameWidth, Math.max(0, v));
  const clampY = (v: number) => Math.min(g.frameHeight, Math.max(0, v));
  return {
    x1: clampX(inputToFrameX(g, x1)),
    y1: clampY(inputToFrameY(g, y1)),
    x2: clampX(inputToFrameX(g, x2)),
    y2: clampY(inputToFrameY(g, y2)),
  };
}
