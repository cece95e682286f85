import type { ModelSpec } from '@perch/shared';
import { ClassificationPostprocessor } from './classification';
import { RawPostprocessor } from './raw';
import { SsdPostprocessor } from './ssd';
import type { Postprocessor } from './types';
import { VadPostprocessor } from './vad';
import { YoloPostprocessor } from './yolo';

export type { Postprocessor, Outputs, OutputTensor, PostContext } from './types';

/** The postprocessor a validated spec asks for. */
export function createPostprocessor(spec: ModelSpec): Postprocessor {
  const pp = spec.postprocessor;
  const input = spec.input;
  const size = input.kind === 'image' ? { w: input.width, h: input.height } : { w: 1, h: 1 };
  switch (pp.kind) {
    case 'classification':
      return new ClassificationPostprocessor(pp.params);
    case 'yolo':
      return new YoloPostprocessor(pp.params);
    case 'ssd':
    case 'blazeface':
      return new SsdPostprocessor(pp.params, size.w, size.h);
    case 'vad':
      return new VadPostprocessor(pp.params, input.kind === 'audio' ? input.sampleRate : 16_000);
    case 'raw':
      return new RawPostprocessor(pp.params);
  }
}
