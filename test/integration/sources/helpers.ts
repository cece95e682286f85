import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { SourceItem } from '../../../agent/src/pipeline/types';
import { createSource, type PerchSource } from '../../../agent/src/sources';

const execFileAsync = promisify(execFile);

/** Runs ffmpeg to make a test input (a video or audio file). */
export async function ffmpeg(args: string[]): Promise<void> {
  await execFileAsync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

/** Sources started by a test file; `stopAll()` in afterEach leaves no ffmpeg or command running. */
export class Started {
  private readonly sources: PerchSource[] = [];

  async start<T extends SourceItem = SourceItem>(
    config: unknown,
    deps: Parameters<typeof createSource>[1] = {},
  ): Promise<{ source: PerchSource; items: T[] }> {
    const source = createSource(config, deps);
    this.sources.push(source);
    const items: T[] = [];
    await source.start((item) => items.push(item as T));
    return { source, items };
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.sources.splice(0).map((s) => s.stop()));
  }
}
