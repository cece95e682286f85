import '../../../agent/test/pipeline/helpers/ort-realm';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { createLogger, eventSchema, ManualClock, type EventMessage } from '@perch/shared';
import { createPipeline } from '../../../agent/src/pipeline/runner';
import type { Frame, PipelineHandle, RulesConfig, Source } from '../../../agent/src/pipeline/types';
import { ManualSource } from '../../../agent/test/pipeline/helpers/manual-source';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { blazefaceBundle, facePhotos } from './helpers';

const logger = createLogger({ namespace: 'test', silent: true });

describe('a BlazeFace pipeline on photographs', () => {
  let tmp: ReturnType<typeof tempDir>;
  let sample1: Buffer;
  let blank: Buffer;
  let p: PipelineHandle | undefined;
  beforeAll(async () => {
    sample1 = fs.readFileSync(facePhotos()[0]!);
    blank = await sharp({ create: { width: 1920, height: 1280, channels: 3, background: '#303030' } })
      .jpeg()
      .toBuffer();
  });
  beforeEach(() => (tmp = tempDir()));
  afterEach(async () => {
    await p?.stop();
    p = undefined;
    tmp.cleanup();
  });

  async function run(rules: RulesConfig, frames: Buffer[], clock = new ManualClock()) {
    const source = new ManualSource<Frame>('frame');
    const events: EventMessage[] = [];
    p = createPipeline(
      {
        id: 'porch',
        source: source as Source,
        bundle: blazefaceBundle(),
        rules,
        sinks: [{ emit: (e) => void events.push(e) }],
        snapshots: { dir: tmp.dir },
        inference: { intraOpThreads: 1 },
        clock,
      },
      { logger },
    );
    await p.start();
    for (const [i, data] of frames.entries()) {
      source.push({ kind: 'frame', data });
      await waitFor(() => p!.stats().processed === i + 1);
      await clock.advance(100);
    }
    return { events, source };
  }

  it('makes one start per face in view, with a snapshot that has the boxes drawn, and ends when they leave', async () => {
    const clock = new ManualClock();
    const { events } = await run(
      {
        holdOffMs: 2000,
        updateIntervalMs: 60_000,
        zones: [
          {
            id: 'all',
            points: [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 1],
            ],
          },
        ],
      },
      [sample1, sample1, sample1],
      clock,
    );
    // All three faces are one label in one zone: one occurrence, three instances.
    const starts = events.filter((e) => e.phase === 'start');
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatchObject({ label: 'face', zone: 'all', data: { instances: 3 } });
    expect(eventSchema.safeParse(starts[0]).success).toBe(true);
    const file = path.join(tmp.dir, `${starts[0]!.snapshot}.jpg`);
    const snap = await sharp(fs.readFileSync(file)).raw().toBuffer({ resolveWithObject: true });
    expect([snap.info.width, snap.info.height]).toEqual([1920, 1280]);
    // The box's left edge is drawn in the overlay colour.
    const b = starts[0]!.box!;
    const x = Math.round(b.x * 1920);
    const y = Math.round((b.y + b.h / 2) * 1280);
    const at = (y * snap.info.width + x) * snap.info.channels;
    expect(snap.data[at]).toBeGreaterThan(200);
    expect(snap.data[at + 1]).toBeLessThan(100);

    await clock.advance(1500);
    expect(events.map((e) => e.phase)).toEqual(['start']);
    await clock.advance(1000);
    expect(events.map((e) => e.phase)).toEqual(['start', 'end']);
  });

  it('counts only the faces inside a zone', async () => {
    // The left third of the frame holds one of the three faces (centre at x ~ 0.255).
    const { events } = await run(
      {
        zones: [
          {
            id: 'left',
            points: [
              [0, 0],
              [0.35, 0],
              [0.35, 1],
              [0, 1],
            ],
          },
        ],
      },
      [sample1, blank],
    );
    expect(events.filter((e) => e.phase === 'start')).toEqual([
      expect.objectContaining({ zone: 'left', data: expect.objectContaining({ instances: 1 }) as unknown }),
    ]);
    expect(events[0]!.box!.x + events[0]!.box!.w / 2).toBeLessThan(0.35);
  });

  it('ignores faces smaller than the minimum box area', async () => {
    const { events } = await run({ minBoxArea: 0.2 }, [sample1]);
    expect(events).toEqual([]);
    expect(p!.stats().detections).toBe(3);
  });
});
