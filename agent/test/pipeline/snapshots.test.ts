import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { SnapshotStore, overlaySvg } from '../../src/pipeline/output/snapshots';
import { DropOldestQueue, OrderGate, Slot } from '../../src/pipeline/queue';
import { LatencyWindow } from '../../src/pipeline/output/latency';
import type { Frame } from '../../src/pipeline/types';
import { tempDir } from '../../../test/helpers/tmp';

describe('snapshots', () => {
  let tmp: ReturnType<typeof tempDir>;
  let frame: Frame;
  beforeAll(async () => {
    const data = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#202020' } })
      .jpeg()
      .toBuffer();
    frame = { kind: 'frame', data, ts: 0, seq: 7 };
  });
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('draws the boxes onto the frame as a JPEG of the frame size', async () => {
    const store = new SnapshotStore({ dir: tmp.dir });
    const det = { label: 'person', classIndex: 0, score: 0.9, box: { x1: 100, y1: 60, x2: 200, y2: 180 } };
    const ref = await store.save('cam', frame, { width: 320, height: 240 }, [det], 1000);
    expect(ref.ref).toMatch(/^cam-1000-7-\d+$/);
    const { data, info } = await sharp(fs.readFileSync(ref.path)).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([320, 240]);
    const px = (x: number, y: number) =>
      Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
    const [r, g] = px(100, 120); // on the left edge of the box
    expect(r).toBeGreaterThan(180);
    expect(g).toBeLessThan(120);
    expect(px(150, 120)).toEqual(px(10, 10)); // inside the box the frame is untouched
  });

  it('deletes the oldest snapshots to stay under the disk budget', async () => {
    const store = new SnapshotStore({ dir: tmp.dir, maxBytes: 1 });
    await store.save('cam', frame, { width: 320, height: 240 }, [], 1);
    const probe = fs.readdirSync(tmp.dir).map((n) => fs.statSync(path.join(tmp.dir, n)).size)[0]!;
    const budget = new SnapshotStore({ dir: tmp.dir, maxBytes: probe * 3 + 10 });
    const refs = [];
    for (let i = 0; i < 6; i++)
      refs.push((await budget.save('cam', frame, { width: 320, height: 240 }, [], 10 + i)).ref);
    const left = fs.readdirSync(tmp.dir).sort();
    expect(left).toEqual(
      refs
        .slice(3)
        .map((r) => `${r}.jpg`)
        .sort(),
    );
    expect(budget.usedBytes).toBeLessThanOrEqual(probe * 3 + 10);
  });

  it('refuses refs that would leave the folder', () => {
    const store = new SnapshotStore({ dir: tmp.dir });
    expect(() => store.pathOf('../etc/passwd')).toThrow();
    expect(() => store.pathOf('..')).toThrow();
  });

  it('escapes labels in the SVG overlay', () => {
    const svg = overlaySvg(10, 10, [
      { label: '<script>', classIndex: 0, score: 1, box: { x1: 0, y1: 0, x2: 5, y2: 5 } },
    ]);
    expect(svg).not.toContain('<script>');
  });
});

describe('queues', () => {
  it('drops the oldest item when full and hands the newest to the consumer', async () => {
    const q = new DropOldestQueue<number>(2);
    expect(q.push(1)).toBeUndefined();
    expect(q.push(2)).toBeUndefined();
    expect(q.push(3)).toBe(1);
    const signal = new AbortController().signal;
    expect(await q.take(signal)).toBe(2);
    expect(await q.take(signal)).toBe(3);
  });

  it('wakes a waiting consumer and stops waiting on abort', async () => {
    const q = new DropOldestQueue<number>(1);
    const ac = new AbortController();
    const waiting = q.take(ac.signal);
    q.push(5);
    expect(await waiting).toBe(5);
    const stuck = q.take(ac.signal);
    ac.abort();
    await expect(stuck).rejects.toThrow('aborted');
  });

  it('makes a slot producer wait until its item was taken', async () => {
    const slot = new Slot<number>();
    const signal = new AbortController().signal;
    await slot.put(1, signal);
    let second = false;
    const p = slot.put(2, signal).then(() => (second = true));
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    expect(await slot.take(signal)).toBe(1);
    await p;
    expect(await slot.take(signal)).toBe(2);
  });

  it('reports nearest-rank percentiles', () => {
    const w = new LatencyWindow(100);
    for (let i = 1; i <= 100; i++) w.add(i);
    expect(w.summary()).toEqual({ p50: 50, p95: 95, p99: 99, count: 100 });
  });
});

describe('order gate', () => {
  it('lets out-of-order work pass in ticket order, including tickets that finish without passing', async () => {
    const gate = new OrderGate();
    const passed: number[] = [];
    const lane = async (ticket: number, skip = false) => {
      if (!skip) {
        await gate.wait(ticket);
        passed.push(ticket);
      }
      gate.done(ticket);
    };
    const c = lane(2);
    const b = lane(1, true);
    await new Promise((r) => setImmediate(r));
    expect(passed).toEqual([]);
    await lane(0);
    await Promise.all([b, c]);
    expect(passed).toEqual([0, 2]);
  });
});
