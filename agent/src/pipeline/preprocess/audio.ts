import type { AudioInputSpec } from '@perch/shared';
import { PerchError } from '@perch/shared';
import type { AudioWindow } from '../types';
import type { TensorData } from './tensor';

/**
 * Re-cuts incoming audio into the model's window length (Silero wants 512/1024/1536 samples at 16 kHz,
 * a source may deliver any length). Leftover samples wait for the next item, so nothing is lost or doubled.
 */
export class AudioWindower {
  private carry = new Float32Array(0);

  constructor(private readonly spec: AudioInputSpec) {}

  push(window: AudioWindow): TensorData[] {
    if (window.sampleRate !== this.spec.sampleRate) {
      throw new PerchError(
        'E_PIPELINE_INPUT_KIND',
        `audio at ${window.sampleRate} Hz, the model wants ${this.spec.sampleRate} Hz`,
      );
    }
    const all = new Float32Array(this.carry.length + window.samples.length);
    all.set(this.carry, 0);
    all.set(window.samples, this.carry.length);
    const size = this.spec.windowSamples;
    const out: TensorData[] = [];
    let at = 0;
    for (; at + size <= all.length; at += size) {
      out.push({ type: 'float32', data: all.slice(at, at + size), dims: [1, size] });
    }
    this.carry = all.slice(at);
    return out;
  }

  reset(): void {
    this.carry = new Float32Array(0);
  }
}
