import type { SensorWindow } from '../pipeline/types';
import { BaseSource } from './base-source';
import type { SensorSourceConfig } from './config';
import type { ResolvedDeps } from './deps';
import { LineSplitter } from './line-splitter';
import { parseSensorLine } from './sensor-parse';
import { Windower } from './windower';

/**
 * What the three sensor kinds share: bytes -> lines -> readings -> windows of shape [window, channels].
 * Bad lines are skipped, counted under a code and remembered as the last error; the stream goes on.
 * Subclasses only feed bytes or lines in.
 */
export abstract class SensorSource extends BaseSource<SensorWindow> {
  private readonly windower: Windower;
  private lines: LineSplitter;
  /** Lines that were readings / that were rejected. */
  readings = 0;
  badLines = 0;

  constructor(
    protected readonly config: SensorSourceConfig,
    deps: ResolvedDeps,
  ) {
    super({
      id: deps.id,
      kind: config.kind,
      itemKind: 'sensor',
      clock: deps.clock,
      logger: deps.logger,
      queue: config.queue,
    });
    this.windower = new Windower(config.window, config.hop, config.channels);
    this.lines = new LineSplitter(config.maxLineBytes);
  }

  /** Raw bytes of a stream (a command's stdout, a file's new bytes). */
  protected feedBytes(chunk: Buffer): void {
    for (const ev of this.lines.push(chunk)) {
      if (ev.kind === 'line') this.feedLine(ev.text);
      else this.tooLong(ev.bytes);
    }
  }

  /** The stream ended: a last line without newline still counts. */
  protected flushBytes(): void {
    for (const ev of this.lines.flush()) {
      if (ev.kind === 'line') this.feedLine(ev.text);
      else this.tooLong(ev.bytes);
    }
  }

  /** Forgets a partial line (a restarted command, a truncated file). */
  protected resetLines(): void {
    this.lines = new LineSplitter(this.config.maxLineBytes);
  }

  protected feedLine(text: string): void {
    const parsed = parseSensorLine(text, this.config);
    if (parsed.ok === 'empty') return;
    if (parsed.ok === false) {
      this.badLines += 1;
      this.tracker.error('E_SOURCE_SENSOR_PARSE', `bad sensor line: ${parsed.reason}`);
      return;
    }
    this.readings += 1;
    this.tracker.alive();
    for (const values of this.windower.push(parsed.values)) {
      this.emit({ kind: 'sensor', values, shape: [this.config.window, this.config.channels] });
    }
  }

  private tooLong(bytes: number): void {
    this.badLines += 1;
    this.tracker.error(
      'E_SOURCE_SENSOR_LINE_TOO_LONG',
      `sensor line of ${bytes} bytes is longer than ${this.config.maxLineBytes}`,
    );
  }
}
