import type { AudioWindow } from '../pipeline/types';
import { BaseSource } from './base-source';
import type { AudioSourceConfig } from './config';
import { backoffOf, type ResolvedDeps } from './deps';
import { audioArgs } from './ffmpeg-args';
import { ProcessSupervisor } from './process-supervisor';
import { Windower } from './windower';

/**
 * Audio through ffmpeg (file, lavfi or ALSA device) resampled to mono float PCM at `sampleRate` (16 kHz by
 * default), cut into windows of `window` samples every `hop` samples (Silero VAD: 512/512).
 */
export class AudioSource extends BaseSource<AudioWindow> {
  private readonly supervisor: ProcessSupervisor;
  private readonly windower: Windower;
  /** Bytes of a float split across two pipe reads. */
  private carry = Buffer.alloc(0);

  constructor(
    private readonly config: AudioSourceConfig,
    deps: ResolvedDeps,
  ) {
    super({
      id: deps.id,
      kind: config.kind,
      itemKind: 'audio',
      clock: deps.clock,
      logger: deps.logger,
      queue: config.queue,
    });
    this.windower = new Windower(config.window, config.hop, 1);
    const input = config.input;
    this.supervisor = new ProcessSupervisor({
      command: deps.ffmpegPath,
      args: audioArgs(config),
      spawn: deps.spawn,
      clock: deps.clock,
      backoff: backoffOf(config),
      random: deps.random,
      stallTimeoutMs: config.stallTimeoutMs,
      finite: input.type === 'lavfi' || (input.type === 'file' && !input.loop),
      health: this.tracker,
      logger: deps.logger,
      onSpawn: () => {
        this.carry = Buffer.alloc(0);
        this.windower.reset();
      },
      onData: (chunk) => this.onPcm(chunk),
    });
  }

  protected begin(): Promise<void> {
    this.supervisor.start();
    return Promise.resolve();
  }

  protected end(): Promise<void> {
    return this.supervisor.stop();
  }

  protected override stderrTail(): readonly string[] {
    return this.supervisor.stderr.get();
  }

  get pid(): number | undefined {
    return this.supervisor.pid;
  }

  private onPcm(chunk: Buffer): void {
    const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = bytes.length - (bytes.length % 4);
    this.carry = Buffer.from(bytes.subarray(whole));
    if (whole === 0) return;
    // Copy into an aligned buffer: a pipe chunk may start at any byte offset.
    const samples = new Float32Array(whole / 4);
    Buffer.from(samples.buffer).set(bytes.subarray(0, whole));
    for (const w of this.windower.push(samples)) {
      this.emit({ kind: 'audio', samples: w, sampleRate: this.config.sampleRate });
    }
  }
}
