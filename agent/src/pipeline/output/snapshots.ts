import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PerchError } from '@perch/shared';
import { openFrame } from '../preprocess/image';
import type { Detection, Frame, SnapshotConfig, SnapshotRef } from '../types';

const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An SVG the size of the frame with a rectangle and a label per detection. */
export function overlaySvg(width: number, height: number, detections: readonly Detection[]): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(12, Math.round(height / 40));
  const parts = detections.flatMap((d) => {
    if (!d.box) return [];
    const { x1, y1, x2, y2 } = d.box;
    const text = `${esc(d.label)} ${(d.score * 100).toFixed(0)}%`;
    const ty = y1 > font + 4 ? y1 - 4 : y1 + font + 2;
    return [
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="#ff2d55" stroke-width="${stroke}"/>`,
      `<text x="${x1.toFixed(1)}" y="${ty.toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#ff2d55">${text}</text>`,
    ];
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** The frame as JPEG with its boxes drawn on it. */
export async function renderSnapshot(
  frame: Frame,
  size: { width: number; height: number },
  detections: readonly Detection[],
  quality = 80,
): Promise<Buffer> {
  const svg = Buffer.from(overlaySvg(size.width, size.height, detections));
  return openFrame(frame)
    .composite([{ input: svg, top: 0, left: 0 }])
    .jpeg({ quality })
    .toBuffer();
}

interface Stored {
  readonly name: string;
  readonly bytes: number;
}

/**
 * Snapshots in one folder under a byte budget: the oldest go first. Files are written to a temporary name
 * and renamed, so a reader never sees half a JPEG.
 */
export class SnapshotStore {
  private readonly files: Stored[] = [];
  private total = 0;
  private ready: Promise<void> | undefined;
  private counter = 0;

  constructor(private readonly cfg: SnapshotConfig) {}

  get dir(): string {
    return this.cfg.dir;
  }

  get usedBytes(): number {
    return this.total;
  }

  /** Where the JPEG of `ref` is (refs are [A-Za-z0-9._-]+, never a path). */
  pathOf(ref: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(ref) || ref.startsWith('.'))
      throw new PerchError('E_INVALID_ID', `bad snapshot ref ${ref}`);
    return path.join(this.cfg.dir, `${ref}.jpg`);
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await fs.mkdir(this.cfg.dir, { recursive: true });
      const names = (await fs.readdir(this.cfg.dir)).filter((n) => n.endsWith('.jpg'));
      const stats = await Promise.all(
        names.map(async (name) => ({
          name,
          st: await fs.stat(path.join(this.cfg.dir, name)).catch(() => undefined),
        })),
      );
      for (const { name, st } of stats.sort((a, b) => (a.st?.mtimeMs ?? 0) - (b.st?.mtimeMs ?? 0))) {
        if (!st) continue;
        this.files.push({ name, bytes: st.size });
        this.total += st.size;
      }
    })();
    return this.ready;
  }

  async save(
    pipelineId: string,
    frame: Frame,
    size: { width: number; height: number },
    detections: readonly Detection[],
    ts: number,
  ): Promise<SnapshotRef> {
    try {
      await this.init();
      const jpeg = await renderSnapshot(frame, size, detections, this.cfg.quality ?? 80);
      const ref = `${pipelineId}-${Math.round(ts)}-${frame.seq}-${this.counter++}`;
      const file = this.pathOf(ref);
      const tmp = `${file}.tmp`;
      await fs.writeFile(tmp, jpeg);
      await fs.rename(tmp, file);
      this.files.push({ name: `${ref}.jpg`, bytes: jpeg.length });
      this.total += jpeg.length;
      await this.enforceBudget();
      return { ref, path: file, bytes: jpeg.length };
    } catch (err) {
      if (err instanceof PerchError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new PerchError('E_PIPELINE_SNAPSHOT', `snapshot not stored: ${reason}`, undefined, {
        cause: err,
      });
    }
  }

  private async enforceBudget(): Promise<void> {
    const max = this.cfg.maxBytes ?? DEFAULT_MAX_BYTES;
    // Keep at least the newest one, even if it alone is over the budget.
    while (this.total > max && this.files.length > 1) {
      const old = this.files.shift() as Stored;
      this.total -= old.bytes;
      await fs.rm(path.join(this.cfg.dir, old.name), { force: true });
    }
  }
}
