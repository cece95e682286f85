import type { Zone } from '@perch/shared';
import type { Box } from '../types';

/** Even-odd ray casting; points on the edge may fall either way. */
export function pointInPolygon(
  x: number,
  y: number,
  polygon: readonly (readonly [number, number])[],
): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i] as readonly [number, number];
    const [xj, yj] = polygon[j] as readonly [number, number];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** The first zone (in configuration order) that holds the box centre, in normalised frame coordinates. */
export function zoneOf(
  box: Box,
  frame: { width: number; height: number },
  zones: readonly Zone[],
): Zone | undefined {
  const cx = (box.x1 + box.x2) / 2 / frame.width;
  const cy = (box.y1 + box.y2) / 2 / frame.height;
  return zones.find((z) => pointInPolygon(cx, cy, z.points));
}
