import type { TensorInputSpec } from '@perch/shared';
import { PerchError } from '@perch/shared';
import type { SensorWindow } from '../types';
import type { TensorData } from './tensor';

/** The spec's shape with its one -1 resolved for `count` elements, or a coded error. */
export function resolveShape(shape: readonly number[], count: number): number[] {
  const free = shape.filter((d) => d === -1).length;
  const fixed = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
  if (free > 1) throw new PerchError('E_PIPELINE_SPEC_INVALID', 'tensor shape has more than one -1');
  if (free === 0) {
    if (fixed !== count) {
      throw new PerchError(
        'E_PIPELINE_SPEC_MISMATCH',
        `sensor window has ${count} values, shape [${shape.join(',')}] needs ${fixed}`,
      );
    }
    return [...shape];
  }
  if (fixed === 0 || count % fixed !== 0) {
    throw new PerchError(
      'E_PIPELINE_SPEC_MISMATCH',
      `sensor window of ${count} values does not fit shape [${shape.join(',')}]`,
    );
  }
  return shape.map((d) => (d === -1 ? count / fixed : d));
}

export function sensorToTensor(window: SensorWindow, spec: TensorInputSpec): TensorData {
  const dims = resolveShape(spec.shape, window.values.length);
  if (spec.dtype === 'uint8') {
    const data = Uint8Array.from(window.values, (v) => Math.max(0, Math.min(255, Math.round(v))));
    return { type: 'uint8', data, dims };
  }
  return { type: 'float32', data: window.values, dims };
}
