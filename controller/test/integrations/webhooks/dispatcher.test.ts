import { createLogger, ManualClock, type EventMessage } from '@perch/shared';
import {
  MemoryWebhookStore,
  verifyWebhook,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
} from '../../../src/integrations/webhooks';

const logger = createLogger({ namespace: 'test:webhooks', silent: true });
const SECRET = 'whsec_0123456789abcdef0123456789abcdef';

const event = (label = 'person', phase: EventMessage['phase'] = 'start'): EventMessage => ({
  v: 1,
  id: 'msg-00000001',
  ts: Date.UTC(2026, 0, 1),
  eventId: 'evt-00000001',
  phase,
  pipeline: 'front-door',
  label,
  score: 0.9,
});

/** The HTTP seam: answers with the given statuses in turn, recording each request. */
function fakeFetch(statuses: Array<number | Error>) {
  const calls: Array<{ url: string; headers: Record<string, string>; body: string }> = [];
  const fn = jest.fn(async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({
      url: String(url),
      headers: init?.headers as Record<string, string>,
      body: String(init?.body),
    });
    const next = statuses.length > 1 ? statuses.shift() : statuses[0];
    if (next instanceof Error) throw next;
    return new Response(null, { status: next ?? 200 });
  });
  return { fn: fn as unknown as typeof fetch, calls };
}

function make(statuses: Array<number | Error>, extra: Partial<WebhookDispatcherOptions> = {}) {
  const clock = new ManualClock();
  const store = new MemoryWebhookStore();
  const http = fakeFetch(statuses);
  const dispatcher = new WebhookDispatcher({
    store,
    logger,
    clock,
    fetch: http.fn,
    random: () => 1, // upper end of the jitter: delays are exactly base * 2^(n-1)
    backoff: { baseMs: 1000, maxMs: 60_000 },
    maxAttempts: 4,
    ...extra,
  });
  dispatcher.start();
  return { clock, store, http, dispatcher };
}

describe('WebhookDispatcher', () => {
  it('sends a signed JSON body to each matching subscription only', async () => {
    const { clock, http, dispatcher } = make([204]);
    await dispatcher.createSubscription({
      url: 'http://a.test/hook',
      secret: SECRET,
      filter: { labels: ['person'] },
    });
    await dispatcher.createSubscription({
      url: 'http://b.test/hook',
      secret: SECRET,
      filter: { devices: ['dev-b'] },
    });
    await dispatcher.createSubscription({
      url: 'http://c.test/hook',
      secret: SECRET,
      filter: { tags: ['garden'] },
    });
    expect(await dispatcher.publish({ deviceId: 'dev-a', tags: ['garden'], event: event() })).toBe(2);
    await dispatcher.idle();
    expect(http.calls.map((c) => c.url).sort()).toEqual(['http://a.test/hook', 'http://c.test/hook']);
    const call = http.calls[0];
    const body = JSON.parse(call?.body ?? '{}');
    expect(body).toMatchObject({ type: 'perch.event', deviceId: 'dev-a', event: { label: 'person' } });
    expect(call?.headers['perch-webhook-id']).toBe(body.id);
    expect(() =>
      verifyWebhook(SECRET, call?.headers['perch-signature'], call?.body ?? '', { nowMs: clock.now() }),
    ).not.toThrow();
    expect(dispatcher.stats()).toMatchObject({ enqueued: 2, delivered: 2, failedAttempts: 0 });
  });

  it('retries with exponential backoff on the clock, then succeeds with the same body', async () => {
    const { clock, http, dispatcher, store } = make([500, new Error('ECONNREFUSED'), 200]);
    await dispatcher.createSubscription({ url: 'http://a.test/hook', secret: SECRET });
    await dispatcher.publish({ deviceId: 'dev-a', event: event() });
    await dispatcher.idle();
    expect(http.calls).toHaveLength(1);
    await clock.advance(999);
    expect(http.calls).toHaveLength(1);
    await clock.advance(1);
    await dispatcher.idle();
    expect(http.calls).toHaveLength(2);
    await clock.advance(1999);
    expect(http.calls).toHaveLength(2);
    await clock.advance(1);
    await dispatcher.idle();
    expect(http.calls).toHaveLength(3);
    expect(new Set(http.calls.map((c) => c.body)).size).toBe(1);
    expect(await store.countPending()).toBe(0);
    expect(dispatcher.stats()).toMatchObject({ delivered: 1, failedAttempts: 2, deadLettered: 0 });
  });

  it('moves a delivery to the dead letters after maxAttempts, and redelivers it on request', async () => {
    const { clock, http, dispatcher } = make([503]);
    await dispatcher.createSubscription({ url: 'http://a.test/hook', secret: SECRET });
    await dispatcher.publish({ deviceId: 'dev-a', event: event() });
    await dispatcher.idle();
    await clock.advance(1000 + 2000 + 4000);
    await dispatcher.idle();
    expect(http.calls).toHaveLength(4);
    const [dead] = await dispatcher.listDeadLetters();
    expect(dead).toMatchObject({ status: 'dead', attempts: 4, lastStatus: 503, lastError: 'HTTP 503' });
    expect(dispatcher.stats()).toMatchObject({ failedAttempts: 3, deadLettered: 1, delivered: 0 });
    await clock.advance(3_600_000);
    expect(http.calls).toHaveLength(4); // nothing more scheduled for a dead letter

    await expect(dispatcher.redeliver('whd-none')).rejects.toMatchObject({ code: 'E_WEBHOOK_NOT_FOUND' });
  });

  it('redelivers a dead letter once the receiver works again', async () => {
    const statuses: Array<number | Error> = [500];
    const { http, dispatcher } = make(statuses, { maxAttempts: 1 });
    await dispatcher.createSubscription({ url: 'http://a.test/hook', secret: SECRET });
    await dispatcher.publish({ deviceId: 'dev-a', event: event() });
    await dispatcher.idle();
    const [dead] = await dispatcher.listDeadLetters();
    statuses[0] = 200;
    await dispatcher.redeliver(dead?.id ?? '');
    await dispatcher.idle();
    expect(http.calls).toHaveLength(2);
    expect(await dispatcher.listDeadLetters()).toEqual([]);
    expect(dispatcher.stats().delivered).toBe(1);
  });

  it('dead-letters deliveries whose subscription was deleted instead of dropping them', async () => {
    const { clock, dispatcher } = make([500]);
    const sub = await dispatcher.createSubscription({ url: 'http://a.test/hook', secret: SECRET });
    await dispatcher.publish({ deviceId: 'dev-a', event: event() });
    await dispatcher.idle();
    await dispatcher.deleteSubscription(sub.id);
    await clock.advance(1000);
    await dispatcher.idle();
    const [dead] = await dispatcher.listDeadLetters();
    expect(dead?.lastError).toBe('subscription was deleted');
  });

  it('counts and rethrows when the store cannot queue an event', async () => {
    const { dispatcher, store } = make([200]);
    await dispatcher.createSubscription({ url: 'http://a.test/hook', secret: SECRET });
    store.addDeliveries = async () => {
      throw new Error('disk full');
    };
    await expect(dispatcher.publish({ deviceId: 'dev-a', event: event() })).rejects.toThrow('disk full');
    expect(dispatcher.stats().enqueueFailures).toBe(1);
  });

  it('refuses invalid subscriptions with E_WEBHOOK_INVALID and generates secrets', async () => {
    const { dispatcher } = make([200]);
    for (const bad of [
      { url: 'ftp://a.test/' },
      { url: 'http://a.test/', secret: 'short' },
      { url: 'http://a.test/', filter: { devices: ['Not An Id'] } },
      { url: 'http://a.test/', extra: 1 },
    ]) {
      await expect(dispatcher.createSubscription(bad)).rejects.toMatchObject({ code: 'E_WEBHOOK_INVALID' });
    }
    const sub = await dispatcher.createSubscription({ url: 'https://a.test/' });
    expect(sub.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
  });
});
