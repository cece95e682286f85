import { topics } from '@perch/shared';
import { api, connectDevice, enroll, startHarness, type Harness } from './harness';
import { waitFor } from '../../helpers/wait';

jest.setTimeout(60_000);

describe('telemetry and event queries', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('downsamples a metric into buckets and filters events, newest first', async () => {
    const d = await enroll(h);
    const client = await connectDevice(d);
    const t0 = 1_800_000_000_000;
    try {
      for (let i = 0; i < 6; i++) {
        const msg = {
          v: 1,
          id: `tel-${i}-abcdef`,
          ts: t0 + i * 1000,
          metrics: { 'system.cpu_percent': i * 10, 'pipeline.door.fps': 5 },
        };
        await client.publishAsync(topics.telemetry(d.deviceId), JSON.stringify(msg), { qos: 1 });
      }
      for (const [i, label] of ['person', 'car', 'person'].entries()) {
        const ev = {
          v: 1,
          id: `evt-${i}-abcdef`,
          ts: t0 + i,
          eventId: `trk-${i}-abcdef`,
          phase: 'start',
          pipeline: 'door',
          label,
          score: 0.9,
        };
        await client.publishAsync(topics.events(d.deviceId), JSON.stringify(ev), { qos: 1 });
      }
    } finally {
      await client.endAsync();
    }
    const q = `/api/v1/telemetry?device=${d.deviceId}&metric=system.cpu_percent&from=${t0}&to=${t0 + 10_000}&stepMs=2000`;
    const series = await waitFor(
      async () => {
        const r = await api<{
          points: Array<{ ts: number; avg: number; min: number; max: number; count: number }>;
        }>(h, 'GET', q, h.adminToken);
        return r.body.points.reduce((s, p) => s + p.count, 0) === 6 ? r.body : undefined;
      },
      { what: 'six samples' },
    );
    expect(series.points).toEqual([
      { ts: t0, avg: 5, min: 0, max: 10, count: 2 },
      { ts: t0 + 2000, avg: 25, min: 20, max: 30, count: 2 },
      { ts: t0 + 4000, avg: 45, min: 40, max: 50, count: 2 },
    ]);
    const events = await waitFor(async () => {
      const r = await api<{ events: Array<{ id: string; label: string; device: string }> }>(
        h,
        'GET',
        `/api/v1/events?device=${d.deviceId}&label=person`,
        h.adminToken,
      );
      return r.body.events.length === 2 ? r.body.events : undefined;
    });
    expect(events.map((e) => e.id)).toEqual(['evt-2-abcdef', 'evt-0-abcdef']);
    expect(events[0]?.device).toBe(d.deviceId);
  });
});
