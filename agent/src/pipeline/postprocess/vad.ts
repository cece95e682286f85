import type { VadParams } from '@perch/shared';
import type { TensorData } from '../preprocess/tensor';
import type { InferenceResult } from '../types';
import type { Outputs, Postprocessor } from './types';
import { floats, pickOutput, shapeError } from './util';

const STATE_NAMES = {
  'silero-v4': { inputs: ['h', 'c'], outputs: ['hn', 'cn'], dims: [2, 1, 64] },
  'silero-v5': { inputs: ['state'], outputs: ['stateN'], dims: [2, 1, 128] },
} as const;

/**
 * Voice activity with Silero VAD. The model is recurrent: its state output is fed back in with the next
 * window, so the pipeline must run windows of one stream in order through one instance of this class.
 * Speech starts when the probability reaches `speechThreshold` and ends when it falls below
 * `silenceThreshold` (hysteresis, so one utterance is one speech span).
 */
export class VadPostprocessor implements Postprocessor {
  readonly outputNames: readonly string[];
  private state: Float32Array[] = [];
  private speaking = false;
  /** Speech probability of the last window, for stats and tests. */
  lastProbability = 0;

  constructor(
    private readonly params: VadParams,
    private readonly sampleRate: number,
  ) {
    const names = STATE_NAMES[params.variant];
    this.outputNames = [params.output, ...names.outputs];
    this.reset();
  }

  reset(): void {
    const { inputs, dims } = STATE_NAMES[this.params.variant];
    this.state = inputs.map(() => new Float32Array(dims.reduce((p: number, d: number) => p * d, 1)));
    this.speaking = false;
    this.lastProbability = 0;
  }

  feeds(): Record<string, TensorData> {
    const { inputs, dims } = STATE_NAMES[this.params.variant];
    const out: Record<string, TensorData> = {
      sr: { type: 'int64', data: BigInt64Array.from([BigInt(this.sampleRate)]), dims: [] },
    };
    inputs.forEach((name, i) => {
      out[name] = { type: 'float32', data: this.state[i] as Float32Array, dims: [...dims] };
    });
    return out;
  }

  process(outputs: Outputs): InferenceResult {
    const { outputs: stateOutputs } = STATE_NAMES[this.params.variant];
    const t = pickOutput(outputs, this.params.output, 'vad');
    const prob = floats(t, 'vad')[0];
    if (prob === undefined) throw shapeError('vad', t, '[1, 1]');
    this.state = stateOutputs.map((name) =>
      Float32Array.from(floats(pickOutput(outputs, name, 'vad state'), 'vad state')),
    );
    this.lastProbability = prob;
    if (!this.speaking && prob >= this.params.speechThreshold) this.speaking = true;
    else if (this.speaking && prob < this.params.silenceThreshold) this.speaking = false;
    return { detections: this.speaking ? [{ label: 'speech', classIndex: 0, score: prob }] : [] };
  }
}
