import fs from 'node:fs';
import path from 'node:path';
import type { Clock, TimerHandle } from '@perch/shared';

const IMAGE = /\.(jpe?g|png|webp)$/i;

/** Image files in a folder, sorted by name. */
export function listImages(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => IMAGE.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/**
 * Turns a set of photographs into a live camera for the demo: every `intervalMs` it writes the next
 * image into the watched folder of a `folder` source (atomically, through a temporary name the source
 * ignores), and keeps only the newest few files there.
 */
export class DemoFeeder {
  private timer: TimerHandle | undefined;
  private next = 0;
  private written: string[] = [];
  private seq = 0;

  constructor(
    private readonly images: readonly string[],
    private readonly outDir: string,
    private readonly clock: Clock,
    private readonly intervalMs = 2000,
    private readonly keep = 5,
  ) {
    if (images.length === 0) throw new Error('DemoFeeder needs at least one image');
  }

  start(): void {
    fs.mkdirSync(this.outDir, { recursive: true });
    for (const f of fs.readdirSync(this.outDir))
      if (f.startsWith('frame-')) fs.rmSync(path.join(this.outDir, f), { force: true });
    this.tick();
    this.timer = this.clock.setInterval(() => this.tick(), this.intervalMs);
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Writes one frame; returns its path. */
  tick(): string {
    const src = this.images[this.next % this.images.length]!;
    this.next++;
    const name = `frame-${String(++this.seq).padStart(6, '0')}${path.extname(src).toLowerCase()}`;
    const dest = path.join(this.outDir, name);
    const tmp = path.join(this.outDir, `.${name}.tmp`);
    fs.copyFileSync(src, tmp);
    fs.renameSync(tmp, dest);
    this.written.push(dest);
    while (this.written.length > this.keep) fs.rmSync(this.written.shift()!, { force: true });
    return dest;
  }
}
