import http from 'node:http';
import path from 'node:path';
import { createLogger, ManualClock, type EventMessage } from '@perch/shared';
import { openSqliteStore } from '../../../controller/src/db/open';
import {
  KyselyWebhookStore,
  verifyWebhook,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
} from '../../../controller/src/integrations/webhooks';
import { tempDir } from '../../helpers/tmp';

const logger = createLogger({ namespace: 'test:webhooks', silent: true });

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  verified: boolean;
}

/** A local webhook receiver on a port from the OS, verifying each signature like a real consumer. */
async function receiver(secret: string, status: () => number, clock: ManualClock) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = true;
      try {
        verifyWebhook(secret, req.headers['perch-signature'] as string | undefined, body, {
          nowMs: clock.now(),
        });
      } catch {
        verified = false;
      }
      received.push({ headers: req.headers, body, verified });
      res.statusCode = verified ? status() : 401;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks/perch`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const event: EventMessage = {
  v: 1,
  id: 'msg-00000042',
  ts: Date.UTC(2026, 0, 1, 8),
  eventId: 'evt-00000042',
  phase: 'start',
  pipeline: 'front-door',
  label: 'person',
  score: 0.87,
  box: { x: 0.1, y: 0.2, w: 0.3, h: 0.4 },
  snapshot: 'snap-00000042.jpg',
};

describe("webhooks over real HTTP with the controller's SQLite store", () => {
  const tmp = tempDir('perch-webhooks-');
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    tmp.cleanup();
  });

  async function dispatcher(clock: ManualClock, file: string, extra: Partial<WebhookDispatcherOptions> = {}) {
    // The controller's own store: the migrated database, through kysely.
    const store = await openSqliteStore({ file: path.join(tmp.dir, file) });
    closers.push(() => store.close());
    const d = new WebhookDispatcher({
      store: new KyselyWebhookStore(store),
      logger,
      clock,
      random: () => 1,
      backoff: { baseMs: 10_000, maxMs: 600_000 },
      maxAttempts: 5,
      ...extra,
    });
    closers.push(() => d.stop());
    return d;
  }

  it('delivers a body whose signature the receiver verifies', async () => {
    const clock = new ManualClock(Date.now());
    const secret = 'whsec_integration-test-secret-000000000';
    const r = await receiver(secret, () => 200, clock);
    closers.push(r.close);
    const d = await dispatcher(clock, 'ok.db');
    d.start();
    await d.createSubscription({ url: r.url, secret, filter: { labels: ['person'] } });
    expect(await d.publish({ deviceId: 'dev-a', event })).toBe(1);
    await d.idle();
    expect(r.received).toHaveLength(1);
    const [got] = r.received;
    expect(got?.verified).toBe(true);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(got?.body ?? '{}')).toMatchObject({ type: 'perch.event', deviceId: 'dev-a', event });
    expect(d.stats()).toMatchObject({ delivered: 1, failedAttempts: 0, deadLettered: 0 });
  });

  it('retries a failing receiver with backoff and dead-letters the event after the limit', async () => {
    const clock = new ManualClock(Date.now());
    const secret = 'whsec_failing-receiver-secret-0000000000';
    const r = await receiver(secret, () => 500, clock);
    closers.push(r.close);
    const d = await dispatcher(clock, 'failing.db');
    d.start();
    await d.createSubscription({ url: r.url, secret });
    await d.publish({ deviceId: 'dev-a', event });
    await d.idle();
    expect(r.received).toHaveLength(1);

    // Attempt n+1 comes 10 s * 2^(n-1) after attempt n; not a moment earlier.
    for (const delay of [10_000, 20_000, 40_000, 80_000]) {
      const before = r.received.length;
      await clock.advance(delay - 1);
      await d.idle();
      expect(r.received).toHaveLength(before);
      await clock.advance(1);
      await d.idle();
      expect(r.received).toHaveLength(before + 1);
    }
    expect(r.received.every((x) => x.verified)).toBe(true);
    // Each attempt is signed afresh (its own t=), over the same body and webhook id.
    expect(new Set(r.received.map((x) => x.headers['perch-signature'])).size).toBe(5);
    expect(new Set(r.received.map((x) => x.body)).size).toBe(1);

    const dead = await d.listDeadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ status: 'dead', attempts: 5, lastStatus: 500 });
    expect(d.stats()).toMatchObject({ enqueued: 1, delivered: 0, failedAttempts: 4, deadLettered: 1 });
    await clock.advance(3_600_000);
    await d.idle();
    expect(r.received).toHaveLength(5);
  });

  it('resumes deliveries left pending in SQLite after a controller restart', async () => {
    const clock = new ManualClock(Date.now());
    const secret = 'whsec_restart-secret-00000000000000000000';
    let up = false;
    const r = await receiver(secret, () => (up ? 200 : 503), clock);
    closers.push(r.close);
    const first = await dispatcher(clock, 'restart.db');
    first.start();
    await first.createSubscription({ url: r.url, secret });
    await first.publish({ deviceId: 'dev-a', event });
    await first.idle();
    expect(first.stats().failedAttempts).toBe(1);
    await first.stop();

    up = true;
    const second = await dispatcher(clock, 'restart.db');
    await clock.advance(10_000);
    second.start();
    await second.idle();
    expect(r.received).toHaveLength(2);
    expect(second.stats().delivered).toBe(1);
    expect(await second.listDeadLetters()).toEqual([]);
  });

  it('queues an event with a key once while it is queued, under an id derived from the key', async () => {
    const clock = new ManualClock(Date.now());
    const secret = 'whsec_keyed-event-secret-000000000000000';
    const r = await receiver(secret, () => 503, clock);
    closers.push(r.close);
    const d = await dispatcher(clock, 'keyed.db');
    await d.createSubscription({ url: r.url, secret });
    const input = { deviceId: 'dev-a', key: 'dev-a/msg-00000042', event };
    await d.publish(input);
    await d.publish(input);
    d.start();
    await d.idle();
    expect(r.received).toHaveLength(1);
    const id = r.received[0]?.headers['perch-webhook-id'];
    expect(id).toMatch(/^whd-[0-9a-f]{40}$/);
    // The same key queued again later (recovery after a crash) keeps its id: receivers deduplicate.
    await d.publish(input);
    await clock.advance(10_000);
    await d.idle();
    expect(r.received.map((x) => x.headers['perch-webhook-id'])).toEqual([id, id]);
  });
});
