import type { SsdAnchorsParams } from '@perch/shared';

/** Anchor centres in normalised input coordinates (fixed anchor size: width = height = 1). */
export interface Anchors {
  readonly count: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
}

/** Known layouts. MediaPipe merges layers with equal strides, so front-128's strides [8,16,16,16] become
 * 16x16 cells x 2 anchors + 8x8 cells x 6 anchors = 896. */
export const ANCHOR_PRESETS: Readonly<
  Record<'blazeface-front-128' | 'blazeface-back-256', SsdAnchorsParams>
> = {
  'blazeface-front-128': { strides: [8, 16], anchorsPerCell: [2, 6], offsetX: 0.5, offsetY: 0.5 },
  'blazeface-back-256': { strides: [16, 32], anchorsPerCell: [2, 6], offsetX: 0.5, offsetY: 0.5 },
};

/** Anchors as MediaPipe's SsdAnchorsCalculator lays them out: layer by layer, row by row, cell by cell. */
export function generateAnchors(p: SsdAnchorsParams, inputWidth: number, inputHeight: number): Anchors {
  const xs: number[] = [];
  const ys: number[] = [];
  p.strides.forEach((stride, layer) => {
    const per = p.anchorsPerCell[layer] ?? p.anchorsPerCell[p.anchorsPerCell.length - 1] ?? 1;
    const cols = Math.ceil(inputWidth / stride);
    const rows = Math.ceil(inputHeight / stride);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        for (let a = 0; a < per; a++) {
          xs.push((x + p.offsetX) / cols);
          ys.push((y + p.offsetY) / rows);
        }
      }
    }
  });
  return { count: xs.length, x: Float32Array.from(xs), y: Float32Array.from(ys) };
}
