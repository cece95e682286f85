import type { Frame } from '../pipeline/types';
import { BaseSource } from './base-source';
import type { CameraSourceConfig } from './config';
import { backoffOf, type ResolvedDeps } from './deps';
import { cameraArgs } from './ffmpeg-args';
import { JpegSplitter } from './jpeg-splitter';
import { ProcessSupervisor } from './process-supervisor';
import { FixedSizeSplitter } from './raw-splitter';

/**
 * Camera frames from an ffmpeg child process: RTSP, V4L2, HTTP MJPEG, video files and lavfi test sources.
 * ffmpeg does the rate limiting (fps filter) and scaling; frames arrive as JPEG (default) or raw RGB and go
 * through a latest-frame slot, so a consumer that falls behind gets the newest frame and the rest are
 * counted as drops. ffmpeg dying or stalling is restarted with jittered backoff.
 */
export class CameraSource extends BaseSource<Frame> {
  private readonly supervisor: ProcessSupervisor;
  private readonly split: { push(chunk: Buffer): Buffer[]; reset(): void };
  private readonly jpeg: JpegSplitter | undefined;
  private reportedCorrupt = 0;
  private reportedOversized = 0;

  constructor(
    private readonly config: CameraSourceConfig,
    deps: ResolvedDeps,
  ) {
    super({
      id: deps.id,
      kind: config.kind,
      itemKind: 'frame',
      clock: deps.clock,
      logger: deps.logger,
      queue: 1,
    });
    const raw =
      config.output === 'rgb24'
        ? { width: config.width!, height: config.height!, channels: 3 as const }
        : undefined;
    if (raw) {
      this.split = new FixedSizeSplitter(raw.width * raw.height * 3);
    } else {
      this.jpeg = new JpegSplitter(config.maxFrameBytes);
      this.split = this.jpeg;
    }
    const finite = config.kind === 'lavfi' || (config.kind === 'file' && !config.loop);
    this.supervisor = new ProcessSupervisor({
      command: deps.ffmpegPath,
      args: cameraArgs(config),
      spawn: deps.spawn,
      clock: deps.clock,
      backoff: backoffOf(config),
      random: deps.random,
      stallTimeoutMs: config.stallTimeoutMs,
      finite,
      health: this.tracker,
      logger: deps.logger,
      onSpawn: () => this.split.reset(),
      onData: (chunk) => {
        for (const data of this.split.push(chunk))
          this.emit(raw ? { kind: 'frame', data, raw } : { kind: 'frame', data });
        this.reportSplitterErrors();
      },
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

  /** The running ffmpeg's pid (tests use it to kill ffmpeg from outside). */
  get pid(): number | undefined {
    return this.supervisor.pid;
  }

  /** The delay chosen before the latest restart, ms. */
  get lastBackoffMs(): number {
    return this.supervisor.lastDelayMs;
  }

  private reportSplitterErrors(): void {
    if (!this.jpeg) return;
    const c = this.jpeg.counters;
    while (this.reportedCorrupt < c.corrupt) {
      this.reportedCorrupt += 1;
      this.tracker.error('E_SOURCE_FRAME_CORRUPT', 'a frame from ffmpeg was not a well-formed JPEG; skipped');
    }
    while (this.reportedOversized < c.oversized) {
      this.reportedOversized += 1;
      this.tracker.error(
        'E_SOURCE_FRAME_TOO_LARGE',
        `a frame was larger than maxFrameBytes (${this.config.maxFrameBytes}); skipped`,
      );
    }
  }
}
