import http from 'node:http';
import type { MqttClient } from 'mqtt';
import { topics } from '@perch/shared';
import { controllerPaths, openSqliteStore } from '@perch/controller';
import { retryDelay, verifyWebhook } from '../../../controller/src/integrations/webhooks';
import { waitFor } from '../../helpers/wait';
import { api, connectDevice, enroll, startHarness, type Enrolled, type Harness } from './harness';

jest.setTimeout(60_000);

const BACKOFF = { baseMs: 40, maxMs: 1000 };
const MAX_ATTEMPTS = 3;
const random = () => 0.5;

interface Hit {
  at: number;
  body: string;
  webhookId: string | undefined;
  verified: boolean;
}

/** A local HTTP receiver that verifies every signature with the secret it is given, like a consumer. */
async function receiver(status: () => number) {
  let secret = '';
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = true;
      try {
        verifyWebhook(secret, req.headers['perch-signature'] as string | undefined, body);
      } catch {
        verified = false;
      }
      hits.push({ at: Date.now(), body, webhookId: req.headers['perch-webhook-id'] as string, verified });
      res.statusCode = verified ? status() : 401;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/perch`,
    hits,
    setSecret: (s: string) => {
      secret = s;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function event(id: string, label: string) {
  return JSON.stringify({
    v: 1,
    id,
    ts: Date.now(),
    eventId: `ev-${id}`,
    phase: 'start',
    pipeline: 'front-door',
    label,
    score: 0.8,
  });
}

describe('webhooks wired into the controller', () => {
  let h: Harness;
  let a: Enrolled;
  let b: Enrolled;
  let ca: MqttClient;
  let cb: MqttClient;
  let failing = true;
  let good: Awaited<ReturnType<typeof receiver>>;
  let bad: Awaited<ReturnType<typeof receiver>>;
  const created: Record<string, { id: string; secret: string }> = {};

  beforeAll(async () => {
    h = await startHarness({
      mode: 'embedded',
      random,
      config: {
        webhooks: { maxAttempts: MAX_ATTEMPTS, backoffBaseMs: BACKOFF.baseMs, backoffMaxMs: BACKOFF.maxMs },
      },
    });
    good = await receiver(() => 200);
    bad = await receiver(() => (failing ? 500 : 204));
    a = await enroll(h, undefined, { name: 'wh-a' });
    b = await enroll(h, undefined, { name: 'wh-b' });
    expect(
      (await api(h, 'PUT', `/api/v1/devices/${a.deviceId}/tags`, h.adminToken, { tags: ['door'] })).status,
    ).toBe(200);
    ca = await connectDevice(a);
    cb = await connectDevice(b);
  });
  afterAll(async () => {
    ca?.end(true);
    cb?.end(true);
    await h?.close();
    await good?.close();
    await bad?.close();
  });

  it('creates subscriptions (secret shown once), lists them without secrets, refuses a bad URL', async () => {
    for (const [name, r, filter] of [
      ['good', good, { tags: ['door'] }],
      ['bad', bad, { devices: [a.deviceId], labels: ['person'] }],
    ] as const) {
      const res = await api<{ id: string; secret: string; filter: unknown }>(
        h,
        'POST',
        '/api/v1/webhooks',
        h.adminToken,
        {
          url: r.url,
          filter,
          description: name,
        },
      );
      expect(res.status).toBe(201);
      expect(res.body.secret).toMatch(/^whsec_/);
      expect(res.body.filter).toEqual(filter);
      r.setSecret(res.body.secret);
      created[name] = res.body;
    }
    const list = await api<{ webhooks: Array<Record<string, unknown>> }>(
      h,
      'GET',
      '/api/v1/webhooks',
      h.adminToken,
    );
    expect(list.body.webhooks.map((w) => w.description)).toEqual(['good', 'bad']);
    expect(JSON.stringify(list.body)).not.toContain('whsec_');
    const one = await api<Record<string, unknown>>(
      h,
      'GET',
      `/api/v1/webhooks/${created.good?.id}`,
      h.adminToken,
    );
    expect(one.body).toMatchObject({ id: created.good?.id, enabled: true });
    expect(one.body).not.toHaveProperty('secret');
    const invalid = await api<{ error: { code: string } }>(h, 'POST', '/api/v1/webhooks', h.adminToken, {
      url: 'ftp://example.com/x',
    });
    expect([invalid.status, invalid.body.error.code]).toEqual([400, 'E_WEBHOOK_INVALID']);
  });

  it('delivers a device event published over MQTT, signed, only to subscriptions whose filter matches', async () => {
    await ca.publishAsync(topics.events(a.deviceId), event('wh-evt-0001', 'person'), { qos: 1 });
    await cb.publishAsync(topics.events(b.deviceId), event('wh-evt-0002', 'person'), { qos: 1 });
    await ca.publishAsync(topics.events(a.deviceId), event('wh-evt-0003', 'car'), { qos: 1 });
    // All three stored (B's too) before looking: then nothing more can arrive for the filters to stop.
    await waitFor(
      async () =>
        (await h.ctl.deps.store.db.selectFrom('events').select('msg_id').execute()).length === 3 || undefined,
      { what: 'three events stored' },
    );
    await waitFor(() => good.hits.length >= 2 && good.hits, {
      what: 'two deliveries to the tag subscription',
    });
    await h.ctl.fanout.idle();
    await h.ctl.deps.webhooks.idle();
    expect(good.hits.every((x) => x.verified)).toBe(true);
    const bodies = good.hits.map((x) => JSON.parse(x.body) as Record<string, unknown>);
    expect(bodies.map((x) => (x.event as { id: string }).id).sort()).toEqual(['wh-evt-0001', 'wh-evt-0003']);
    expect(bodies[0]).toMatchObject({ type: 'perch.event', deviceId: a.deviceId });
    expect(good.hits.map((x) => x.webhookId)).toEqual(bodies.map((x) => x.id));
  });

  it('retries a failing receiver with backoff, then lists the event as a dead letter', async () => {
    const letters = await waitFor(
      async () => {
        const r = await api<{ deadLetters: Array<Record<string, unknown>> }>(
          h,
          'GET',
          '/api/v1/webhooks/dead-letters',
          h.adminToken,
        );
        return r.body.deadLetters.length > 0 && r.body.deadLetters;
      },
      { what: 'dead letter' },
    );
    expect(letters).toEqual([
      expect.objectContaining({
        subscriptionId: created.bad?.id,
        attempts: MAX_ATTEMPTS,
        lastStatus: 500,
        body: expect.objectContaining({
          deviceId: a.deviceId,
          event: expect.objectContaining({ id: 'wh-evt-0001' }),
        }),
      }),
    ]);
    // Only A's "person" event matched; every attempt carried the same id, body and a valid signature.
    expect(bad.hits).toHaveLength(MAX_ATTEMPTS);
    expect(new Set(bad.hits.map((x) => x.body)).size).toBe(1);
    expect(bad.hits.every((x) => x.verified && x.webhookId === letters[0]?.id)).toBe(true);
    // Each retry waited at least its backoff delay (lower bounds only: a slow machine waits longer).
    for (let i = 1; i < bad.hits.length; i++) {
      const gap = (bad.hits[i]?.at ?? 0) - (bad.hits[i - 1]?.at ?? 0);
      expect(gap).toBeGreaterThanOrEqual(retryDelay(i, BACKOFF, random) - 1);
    }
    const own = await api<{ deadLetters: unknown[] }>(
      h,
      'GET',
      `/api/v1/webhooks/${created.bad?.id}/dead-letters`,
      h.adminToken,
    );
    expect(own.body.deadLetters).toHaveLength(1);
    const none = await api<{ deadLetters: unknown[] }>(
      h,
      'GET',
      `/api/v1/webhooks/${created.good?.id}/dead-letters`,
      h.adminToken,
    );
    expect(none.body.deadLetters).toEqual([]);
    const metrics = await api<string>(h, 'GET', '/metrics', h.adminToken);
    expect(metrics.body).toContain('perch_webhook_deliveries_total{outcome="dead_letter"} 1');
    expect(metrics.body).toContain(
      `perch_webhook_deliveries_total{outcome="failed_attempt"} ${MAX_ATTEMPTS - 1}`,
    );
    expect(metrics.body).toContain('perch_webhook_deliveries_total{outcome="delivered"} 2');
  });

  it('redelivers a dead letter once the receiver is fixed', async () => {
    failing = false;
    const [letter] = (
      await api<{ deadLetters: Array<{ id: string }> }>(
        h,
        'GET',
        '/api/v1/webhooks/dead-letters',
        h.adminToken,
      )
    ).body.deadLetters;
    const res = await api(h, 'POST', `/api/v1/webhooks/dead-letters/${letter?.id}/redeliver`, h.adminToken);
    expect(res).toMatchObject({ status: 200, body: { id: letter?.id, status: 'pending' } });
    await waitFor(() => bad.hits.length === MAX_ATTEMPTS + 1, { what: 'redelivery' });
    await h.ctl.deps.webhooks.idle();
    const after = await api<{ deadLetters: unknown[] }>(
      h,
      'GET',
      '/api/v1/webhooks/dead-letters',
      h.adminToken,
    );
    expect(after.body.deadLetters).toEqual([]);
    const again = await api<{ error: { code: string } }>(
      h,
      'POST',
      `/api/v1/webhooks/dead-letters/${letter?.id}/redeliver`,
      h.adminToken,
    );
    expect([again.status, again.body.error.code]).toEqual([404, 'E_WEBHOOK_NOT_FOUND']);
  });

  it('keeps queued deliveries across a controller restart and sends them after it', async () => {
    // Stop only the dispatcher: the event is queued durably but not attempted before the restart.
    await h.ctl.deps.webhooks.stop();
    const before = good.hits.length;
    await ca.publishAsync(topics.events(a.deviceId), event('wh-evt-0004', 'person'), { qos: 1 });
    await waitFor(
      async () =>
        (await h.ctl.deps.store.db.selectFrom('webhook_deliveries').select('id').execute()).length === 2 ||
        undefined,
      { what: 'two queued deliveries' },
    );
    expect(good.hits.length).toBe(before);
    ca.end(true);
    cb.end(true);
    await h.restart();
    await waitFor(() => good.hits.some((x) => x.body.includes('wh-evt-0004')), {
      what: 'delivery after restart',
    });
    await waitFor(() => bad.hits.some((x) => x.body.includes('wh-evt-0004')), {
      what: 'second delivery after restart',
    });
    expect(good.hits.filter((x) => x.body.includes('wh-evt-0004'))).toHaveLength(1);
  });

  it('queues an event stored just before a crash, before the hand-over, at the next start', async () => {
    // The ingest commits an event and the process dies before the fan-out took it: simulated by
    // writing the row while the controller is down (a graceful stop has moved the cursor past
    // everything stored before).
    await h.ctl.stop();
    const store = await openSqliteStore({ file: controllerPaths(h.home).database });
    const msg = JSON.parse(event('wh-evt-0005', 'person')) as Record<string, string | number>;
    try {
      await store.db
        .insertInto('events')
        .values({
          msg_id: 'wh-evt-0005',
          device_id: a.deviceId,
          ts: Number(msg.ts),
          event_id: String(msg.eventId),
          phase: 'start',
          pipeline: 'front-door',
          label: 'person',
          score: 0.8,
          body: JSON.stringify(msg),
          received_at: Date.now(),
        })
        .execute();
    } finally {
      await store.close();
    }
    const before = { good: good.hits.length, bad: bad.hits.length };
    await h.restart();
    await waitFor(() => good.hits.some((x) => x.body.includes('wh-evt-0005')), {
      what: 'recovered delivery',
    });
    await waitFor(() => bad.hits.some((x) => x.body.includes('wh-evt-0005')), {
      what: 'recovered delivery 2',
    });
    await h.ctl.deps.webhooks.idle();
    // Exactly the recovered event, once per subscription: nothing handed over earlier came again.
    expect(
      good.hits.slice(before.good).map((x) => (JSON.parse(x.body) as { event: { id: string } }).event.id),
    ).toEqual(['wh-evt-0005']);
    expect(
      bad.hits.slice(before.bad).map((x) => (JSON.parse(x.body) as { event: { id: string } }).event.id),
    ).toEqual(['wh-evt-0005']);
    // Another restart does not queue it again.
    await h.restart();
    await h.ctl.deps.webhooks.idle();
    expect(await h.ctl.deps.store.db.selectFrom('webhook_deliveries').select('id').execute()).toEqual([]);
    expect(good.hits.filter((x) => x.body.includes('wh-evt-0005'))).toHaveLength(1);
  });

  it('deletes a subscription', async () => {
    const res = await api(h, 'DELETE', `/api/v1/webhooks/${created.good?.id}`, h.adminToken);
    expect(res.status).toBe(200);
    const gone = await api(h, 'GET', `/api/v1/webhooks/${created.good?.id}`, h.adminToken);
    expect(gone.status).toBe(404);
  });
});
