import type { RawParams } from '@perch/shared';
import type { InferenceResult, TensorStatistics } from '../types';
import type { Outputs, OutputTensor, Postprocessor } from './types';
import { floats } from './util';

export function tensorStatistics(name: string, t: OutputTensor): TensorStatistics {
  const v = floats(t, 'raw');
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  let finite = 0;
  let argmax = -1;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    if (!Number.isFinite(x)) continue;
    finite++;
    sum += x;
    sumSq += x * x;
    if (x < min) min = x;
    if (x > max) {
      max = x;
      argmax = i;
    }
  }
  const mean = finite ? sum / finite : 0;
  return {
    name,
    dims: [...t.dims],
    type: t.type,
    min: finite ? min : 0,
    max: finite ? max : 0,
    mean,
    std: finite ? Math.sqrt(Math.max(0, sumSq / finite - mean * mean)) : 0,
    argmax,
    nonFinite: v.length - finite,
  };
}

/** For models Perch has no decoder for: statistics of each output, no detections. */
export class RawPostprocessor implements Postprocessor {
  readonly outputNames?: readonly string[];

  constructor(params: RawParams) {
    if (params.outputs && params.outputs.length > 0) this.outputNames = params.outputs;
  }

  process(outputs: Outputs): InferenceResult {
    const names = this.outputNames ?? Object.keys(outputs);
    const tensors = names.flatMap((n) => {
      const t = outputs[n];
      return t ? [tensorStatistics(n, t)] : [];
    });
    return { detections: [], tensors };
  }
}
