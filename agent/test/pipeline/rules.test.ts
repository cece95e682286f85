import { eventSchema, ManualClock } from '@perch/shared';
import { applyRules } from '../../src/pipeline/rules/filter';
import { EventTracker, toEventMessage } from '../../src/pipeline/rules/events';
import { pointInPolygon } from '../../src/pipeline/rules/zones';
import type { Detection, InferenceResult } from '../../src/pipeline/types';

const frame = { width: 1000, height: 500 };
const person = (x: number, y: number, score = 0.9, size = 100): Detection => ({
  label: 'person',
  classIndex: 0,
  score,
  box: { x1: x - size / 2, y1: y - size / 2, x2: x + size / 2, y2: y + size / 2 },
});
const result = (...detections: Detection[]): InferenceResult => ({ detections, frame });

describe('rules', () => {
  it('keeps only labels of interest above the minimum score and box area', () => {
    const car: Detection = { ...person(100, 100), label: 'car' };
    const m = applyRules(result(person(100, 100), person(300, 300, 0.3), person(500, 250, 0.9, 10), car), {
      labels: ['person'],
      minScore: 0.5,
      minBoxArea: 0.01,
    });
    expect(m.map((x) => x.detection.box?.x1)).toEqual([50]);
  });

  it('passes only detections whose centre is in a zone, and names the zone', () => {
    const zones = [
      {
        id: 'door',
        points: [
          [0, 0],
          [0.3, 0],
          [0.3, 1],
          [0, 1],
        ] as [number, number][],
      },
      {
        id: 'drive',
        points: [
          [0.5, 0.5],
          [1, 0.5],
          [1, 1],
        ] as [number, number][],
      },
    ];
    const m = applyRules(result(person(100, 250), person(600, 100), person(950, 450)), { zones });
    expect(m.map((x) => x.zone)).toEqual(['door', 'drive']);
  });

  it('lets box-less detections through the area and zone rules', () => {
    const speech: Detection = { label: 'speech', classIndex: 0, score: 0.8 };
    expect(
      applyRules(
        { detections: [speech] },
        {
          minBoxArea: 0.5,
          zones: [
            {
              id: 'z',
              points: [
                [0, 0],
                [1, 0],
                [1, 1],
              ],
            },
          ],
        },
      ),
    ).toHaveLength(1);
  });

  it('tests points against a concave polygon', () => {
    const u = [
      [0, 0],
      [1, 0],
      [1, 1],
      [0.66, 1],
      [0.66, 0.33],
      [0.33, 0.33],
      [0.33, 1],
      [0, 1],
    ] as [number, number][];
    expect(pointInPolygon(0.5, 0.6, u)).toBe(false);
    expect(pointInPolygon(0.5, 0.1, u)).toBe(true);
    expect(pointInPolygon(0.1, 0.9, u)).toBe(true);
  });
});

describe('hold-off', () => {
  let ids = 0;
  const newId = () => `id-${String(++ids).padStart(8, '0')}`;

  it('turns a person standing in view at 30 fps for 10 s into one start, updates each second and one end', async () => {
    const clock = new ManualClock(1_000_000);
    const tracker = new EventTracker({ holdOffMs: 2000, updateIntervalMs: 1000, newId });
    const phases: string[] = [];
    for (let i = 0; i < 300; i++) {
      const m = applyRules(result(person(500, 250, 0.8 + (i % 10) / 100)), {});
      phases.push(...tracker.observe(m, clock.now(), frame).map((t) => t.phase));
      await clock.advance(1000 / 30);
    }
    // They leave: nothing for 1.9 s keeps it open, past 2 s it ends.
    for (let i = 0; i < 57; i++) {
      phases.push(...tracker.observe([], clock.now(), frame).map((t) => t.phase));
      await clock.advance(1000 / 30);
    }
    expect(phases.filter((p) => p === 'end')).toHaveLength(0);
    await clock.advance(200);
    phases.push(...tracker.tick(clock.now()).map((t) => t.phase));
    expect(phases[0]).toBe('start');
    expect(phases.filter((p) => p === 'start')).toHaveLength(1);
    expect(phases.filter((p) => p === 'update').length).toBeGreaterThanOrEqual(8);
    expect(phases.filter((p) => p === 'update').length).toBeLessThanOrEqual(10);
    expect(phases[phases.length - 1]).toBe('end');
    expect(phases.filter((p) => p === 'end')).toHaveLength(1);
  });

  it('bridges a short gap (a missed detection) without a new event', () => {
    const tracker = new EventTracker({ holdOffMs: 1000, newId });
    const m = applyRules(result(person(500, 250)), {});
    const a = tracker.observe(m, 0, frame);
    tracker.observe([], 500, frame);
    const b = tracker.observe(m, 900, frame);
    expect(a.map((t) => t.phase)).toEqual(['start']);
    expect(b.filter((t) => t.phase === 'start')).toHaveLength(0);
    expect(tracker.openCount).toBe(1);
  });

  it('keeps separate events per label and per zone', () => {
    const tracker = new EventTracker({ newId });
    const t = tracker.observe(
      [
        { detection: person(100, 100), zone: 'a' },
        { detection: person(120, 100), zone: 'a' },
        { detection: person(800, 100), zone: 'b' },
        { detection: { ...person(500, 100), label: 'dog' } },
      ],
      0,
      frame,
    );
    expect(
      t.map((x) => `${x.phase}:${x.occurrence.label}:${x.occurrence.zone ?? '-'}:${x.occurrence.instances}`),
    ).toEqual(['start:person:a:2', 'start:person:b:1', 'start:dog:-:1']);
  });

  it('makes wire messages that match the shared event schema, with the same eventId from start to end', () => {
    const tracker = new EventTracker({ holdOffMs: 100, newId });
    const ctx = { pipelineId: 'front-door', model: { name: 'blazeface', version: '1.2.0' }, newId };
    const start = tracker.observe([{ detection: person(500, 250), zone: 'porch' }], 1000, frame)[0]!;
    start.occurrence.snapshot = 'front-door-1000-1';
    const end = tracker.tick(2000)[0]!;
    const a = toEventMessage(start, ctx);
    const b = toEventMessage(end, ctx);
    expect(eventSchema.parse(a)).toBeTruthy();
    expect(eventSchema.parse(b)).toBeTruthy();
    expect(a).toMatchObject({
      phase: 'start',
      label: 'person',
      zone: 'porch',
      box: { x: 0.45, y: 0.4, w: 0.1, h: 0.2 },
      snapshot: 'front-door-1000-1',
    });
    expect(b.eventId).toBe(a.eventId);
    expect(b.id).not.toBe(a.id);
    expect(b.phase).toBe('end');
  });
});
