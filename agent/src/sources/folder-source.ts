import fs from 'node:fs';
import path from 'node:path';
import type { TimerHandle } from '@perch/shared';
import type { Frame } from '../pipeline/types';
import { BaseSource } from './base-source';
import type { FolderSourceConfig } from './config';
import type { ResolvedDeps } from './deps';
import { checkImage } from './image-check';

interface Entry {
  size: number;
  mtimeMs: number;
  /** When size and mtime were last seen to change. */
  changedAt: number;
  done: boolean;
}

/**
 * Still images dropped into a folder (by a camera's FTP upload, a script ...). New files only by default;
 * a file is read once its size and mtime have held still for `stableMs`, so a half-written file is not
 * taken. fs.watch makes it prompt; a periodic rescan on the clock makes it reliable where watch events get
 * lost. A corrupt or unsupported file is reported with a code and skipped; the source goes on.
 */
export class FolderSource extends BaseSource<Frame> {
  private readonly known = new Map<string, Entry>();
  private watcher: fs.FSWatcher | undefined;
  private rescanTimer: TimerHandle | undefined;
  private settleTimer: TimerHandle | undefined;
  private scanning: Promise<void> | undefined;
  private again = false;
  private baselined = false;
  private folderError = false;

  constructor(
    private readonly config: FolderSourceConfig,
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
  }

  protected async begin(): Promise<void> {
    await this.trigger();
    this.rescanTimer = this.clock.setInterval(() => void this.trigger(), this.config.rescanMs);
  }

  protected async end(): Promise<void> {
    this.clock.clearInterval(this.rescanTimer);
    this.clock.clearTimeout(this.settleTimer);
    this.watcher?.close();
    this.watcher = undefined;
    await this.scanning;
  }

  /** Scans now; a trigger during a scan is merged into one more scan after it. */
  trigger(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.again = false;
        await this.scan();
      } while (this.again && !this.stopped);
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async scan(): Promise<void> {
    const dir = this.config.path;
    let names: string[];
    try {
      const entries = await fs.promises.readdir(dir, { withFileTypes: true });
      names = entries
        .filter((e) => e.isFile() && this.config.extensions.includes(path.extname(e.name).toLowerCase()))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      this.onFolderError(err);
      return;
    }
    if (this.folderError || this.tracker.state === 'starting') this.tracker.state = 'running';
    this.folderError = false;
    this.watch();
    const present = new Set(names);
    for (const name of this.known.keys()) if (!present.has(name)) this.known.delete(name);
    const now = this.clock.now();
    let pending = false;
    for (const name of names) {
      if (this.stopped) return;
      const entry = this.known.get(name);
      if (entry?.done) continue;
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(path.join(dir, name));
      } catch {
        continue; // gone between readdir and stat
      }
      if (!this.baselined && !this.config.includeExisting) {
        this.known.set(name, { size: st.size, mtimeMs: st.mtimeMs, changedAt: now, done: true });
        continue;
      }
      if (!entry || entry.size !== st.size || entry.mtimeMs !== st.mtimeMs) {
        this.known.set(name, { size: st.size, mtimeMs: st.mtimeMs, changedAt: now, done: false });
        if (this.config.stableMs > 0 || st.size === 0) {
          pending = true;
          continue;
        }
      }
      const current = this.known.get(name)!;
      if (st.size === 0 || now - current.changedAt < this.config.stableMs) {
        pending = true;
        continue;
      }
      current.done = true;
      await this.take(name, st.size);
    }
    this.baselined = true;
    if (pending) this.scheduleSettle();
  }

  /** Looks again after stableMs, so a pending file does not wait for the next full rescan. */
  private scheduleSettle(): void {
    if (this.settleTimer !== undefined || this.stopped) return;
    this.settleTimer = this.clock.setTimeout(
      () => {
        this.settleTimer = undefined;
        void this.trigger();
      },
      Math.max(this.config.stableMs, 10),
    );
  }

  private async take(name: string, size: number): Promise<void> {
    const file = path.join(this.config.path, name);
    if (size > this.config.maxBytes) {
      this.tracker.error(
        'E_SOURCE_FRAME_TOO_LARGE',
        `${name} is ${size} bytes, more than ${this.config.maxBytes}`,
        {
          file: name,
        },
      );
      return;
    }
    let data: Buffer;
    try {
      data = await fs.promises.readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.tracker.error('E_SOURCE_FOLDER', `cannot read ${name}: ${code}`, { file: name, errno: code });
      return;
    }
    const check = await checkImage(data);
    if (!check.ok) {
      this.tracker.error(check.code, `${name}: ${check.message}`, { file: name });
      this.logger.warn('skipped an image from the folder', { file: name, code: check.code });
      return;
    }
    this.emit({ kind: 'frame', data });
  }

  private onFolderError(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    if (!this.folderError) {
      this.folderError = true;
      this.tracker.error('E_SOURCE_FOLDER', `cannot read folder ${this.config.path}: ${code}`, {
        errno: code,
      });
      this.logger.warn('watched folder unreadable; rescanning until it is back', { errno: code });
    }
    this.tracker.state = 'backoff';
    // Files that show up in a folder that appears later are new.
    this.baselined = true;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private watch(): void {
    if (this.watcher || this.stopped) return;
    try {
      this.watcher = fs.watch(this.config.path, { persistent: false }, () => void this.trigger());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // The periodic rescan still finds new files.
    }
  }
}
