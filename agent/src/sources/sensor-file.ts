import fs from 'node:fs';
import type { TimerHandle } from '@perch/shared';
import type { SensorSourceConfig } from './config';
import type { ResolvedDeps } from './deps';
import { SensorSource } from './sensor-source';

type Config = Extract<SensorSourceConfig, { kind: 'sensor-file' }>;

const READ_CHUNK = 64 * 1024;

/**
 * Follows a file like `tail -F`: reads what is appended, starts over when the file is truncated or
 * replaced (rotation), and waits (with a coded error in health) while it is missing. Polled on the clock,
 * with fs.watch as a hint to read sooner. One read at a time.
 */
export class SensorFileSource extends SensorSource {
  private offset = -1;
  private inode: number | undefined;
  private timer: TimerHandle | undefined;
  private watcher: fs.FSWatcher | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private missingReported = false;

  constructor(
    private readonly fileConfig: Config,
    deps: ResolvedDeps,
  ) {
    super(fileConfig, deps);
  }

  protected async begin(): Promise<void> {
    await this.trigger();
    this.timer = this.clock.setInterval(() => void this.trigger(), this.fileConfig.pollMs);
  }

  protected async end(): Promise<void> {
    this.clock.clearInterval(this.timer);
    this.unwatch();
    await this.reading;
  }

  /** Reads whatever is new; a trigger during a read schedules one more read after it. */
  trigger(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readNew();
      } while (this.again && !this.stopped);
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async readNew(): Promise<void> {
    const path = this.fileConfig.path;
    let handle: fs.promises.FileHandle | undefined;
    try {
      handle = await fs.promises.open(path, 'r');
      const st = await handle.stat();
      if (this.offset < 0) {
        // First sight of the file: tail from its end unless asked for everything.
        // A file that appears (or comes back) after the source started is new in all of its content.
        this.offset =
          this.fileConfig.fromStart || this.missingReported || this.inode !== undefined ? 0 : st.size;
      } else if (st.ino !== this.inode || st.size < this.offset) {
        this.logger.info('sensor file was replaced or truncated; reading from its start', { path });
        this.offset = 0;
        this.resetLines();
      }
      if (st.ino !== this.inode) this.unwatch();
      this.inode = st.ino;
      this.missingReported = false;
      if (this.tracker.state === 'starting' || this.tracker.state === 'backoff')
        this.tracker.state = 'running';
      this.watch();
      const buf = Buffer.alloc(READ_CHUNK);
      while (!this.stopped) {
        const { bytesRead } = await handle.read(buf, 0, READ_CHUNK, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.feedBytes(Buffer.from(buf.subarray(0, bytesRead)));
      }
    } catch (err) {
      if (!this.missingReported) {
        this.missingReported = true;
        const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
        this.tracker.error('E_SOURCE_SENSOR_FILE', `cannot read sensor file ${path}: ${code}`, {
          errno: code,
        });
        this.tracker.state = 'backoff';
        this.logger.warn('sensor file unreadable; polling until it is back', { path, errno: code });
      }
      // Whatever comes back at this path is a new file: read it from the start.
      if (this.inode !== undefined) this.offset = -1;
    } finally {
      await handle?.close();
    }
  }

  private watch(): void {
    if (this.watcher || this.stopped) return;
    try {
      this.watcher = fs.watch(this.fileConfig.path, { persistent: false }, () => void this.trigger());
      // Rotation removes the watched inode; polling carries on and watch() re-arms on the next read.
      this.watcher.on('error', () => this.unwatch());
    } catch {
      // Polling alone still works.
    }
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
