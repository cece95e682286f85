import { PerchError } from '@perch/shared';
import type { LoadedModel } from './inference/model';
import { AudioWindower } from './preprocess/audio';
import type { Geometry } from './preprocess/geometry';
import { preprocessImage } from './preprocess/image';
import { sensorToTensor } from './preprocess/sensor';
import type { TensorData } from './preprocess/tensor';
import type { SourceItem } from './types';

/** An item made ready for one model: zero or more input tensors (audio may yield several windows). */
export interface Prepared {
  readonly item: SourceItem;
  readonly model: LoadedModel;
  readonly inputs: readonly TensorData[];
  readonly geometry?: Geometry;
}

const KIND_FOR_INPUT = { image: 'frame', audio: 'audio', tensor: 'sensor' } as const;

/**
 * Turns source items into model inputs. Holds the per-stream state (the audio re-windowing buffer) so it must
 * see the items of one stream in order; `forModel` resets that state when the model changes.
 */
export class Preparer {
  private windower: { model: LoadedModel; w: AudioWindower } | undefined;

  async prepare(item: SourceItem, model: LoadedModel): Promise<Prepared> {
    const input = model.spec.input;
    if (item.kind !== KIND_FOR_INPUT[input.kind]) {
      throw new PerchError(
        'E_PIPELINE_INPUT_KIND',
        `the model takes ${input.kind} input, the source yields ${item.kind} items`,
      );
    }
    if (item.kind === 'frame' && input.kind === 'image') {
      const { tensor, geometry } = await preprocessImage(item, input);
      return { item, model, inputs: [tensor], geometry };
    }
    if (item.kind === 'audio' && input.kind === 'audio') {
      if (this.windower?.model !== model) this.windower = { model, w: new AudioWindower(input) };
      return { item, model, inputs: this.windower.w.push(item) };
    }
    if (item.kind === 'sensor' && input.kind === 'tensor') {
      return { item, model, inputs: [sensorToTensor(item, input)] };
    }
    throw new PerchError('E_PIPELINE_INPUT_KIND', `cannot feed ${item.kind} to ${input.kind}`);
  }
}
