import fc from 'fast-check';
import { topics } from '@perch/shared';
import { api, connectDevice, enroll, startHarness, type Enrolled, type Harness } from './harness';
import { waitFor } from '../../helpers/wait';

/** Payloads that are invalid by construction: each breaks the telemetry/events/status schema somehow. */
const validTelemetry = {
  v: 1,
  id: 'abcdefgh-1234',
  ts: 1_700_000_000_000,
  metrics: { 'system.cpu_percent': 1 },
};
const hostilePayload: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.string({ maxLength: 512 }).map((s) => Buffer.from(`{${s}`)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(Array.isArray(v) ? v : [v]))),
  fc.integer({ min: 33, max: 200 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
  fc
    .constantFrom('__proto__', 'constructor')
    .map((k) =>
      Buffer.from(`{"v":1,"id":"abcdefgh-1","ts":1,"metrics":{},"${k}":{"prototype":{"polluted":true}}}`),
    ),
  fc
    .record({
      v: fc.oneof(fc.constant(2), fc.constant('1'), fc.constant(null)),
      id: fc.string(),
      ts: fc.anything(),
      metrics: fc.anything(),
    })
    .map((o) => Buffer.from(JSON.stringify(o))),
  fc
    .record({ id: fc.string({ maxLength: 7 }) })
    .map((o) => Buffer.from(JSON.stringify({ ...validTelemetry, ...o }))),
  fc
    .record({ ts: fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true, min: 0.1, max: 1e6 })) })
    .map((o) => Buffer.from(JSON.stringify({ ...validTelemetry, ...o }))),
  fc
    .dictionary(
      fc.string({ minLength: 1, maxLength: 8 }).map((s) => `X${s}`),
      fc.string(),
      { minKeys: 1, maxKeys: 5 },
    )
    .map((extra) => Buffer.from(JSON.stringify({ ...validTelemetry, ...extra }))),
  fc.constant(Buffer.from([0xc3, 0x28, 0x7b])),
);

jest.setTimeout(120_000);

describe('hostile input never causes a 5xx, a crash or a stored row, and is counted', () => {
  let h: Harness;
  let d: Enrolled;
  beforeAll(async () => {
    h = await startHarness();
    d = await enroll(h, undefined, { name: 'fuzz-dev' });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function storedRows(): Promise<number> {
    const db = h.ctl.deps.store.db;
    const t = await db
      .selectFrom('telemetry')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const e = await db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const r = await db
      .selectFrom('devices')
      .select('reported')
      .where('id', '=', d.deviceId)
      .executeTakeFirst();
    return Number(t?.n ?? 0) + Number(e?.n ?? 0) + (r?.reported ? 1 : 0);
  }

  it('rejects thousands of generated MQTT payloads on every device topic, storing nothing', async () => {
    const samples = fc.sample(
      fc.tuple(fc.constantFrom('telemetry', 'events', 'reported', 'status', 'cmd-result'), hostilePayload),
      { numRuns: 3000, seed: 424242 },
    );
    const client = await connectDevice(d);
    const before = h.ctl.ingest.processed;
    try {
      for (const [kind, payload] of samples) {
        const topic =
          kind === 'telemetry'
            ? topics.telemetry(d.deviceId)
            : kind === 'events'
              ? topics.events(d.deviceId)
              : kind === 'reported'
                ? topics.reported(d.deviceId)
                : kind === 'status'
                  ? topics.status(d.deviceId)
                  : topics.cmdResult(d.deviceId);
        client.publish(topic, payload, { qos: 1 });
      }
      await waitFor(() => h.ctl.ingest.processed - before >= samples.length, {
        what: 'all payloads processed',
        timeoutMs: 60_000,
      });
    } finally {
      await client.endAsync();
    }
    await h.ctl.ingest.flush();
    expect(await storedRows()).toBe(0);
    const rejects = await h.ctl.deps.metrics.total(h.ctl.deps.metrics.ingestRejects);
    expect(rejects).toBeGreaterThanOrEqual(samples.length);
    const scrape = await api<string>(h, 'GET', '/metrics', h.adminToken);
    expect(scrape.body).toMatch(/perch_ingest_rejects_total\{code="E_SCHEMA"\} \d+/);
    expect(scrape.body).toMatch(/perch_ingest_rejects_total\{code="E_PAYLOAD_JSON"\} \d+/);
    // The process metrics sit beside Perch's own.
    expect(scrape.body).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(scrape.body).toMatch(/^nodejs_eventloop_lag_seconds [\d.e-]+/m);
  });

  it('answers thousands of hostile HTTP bodies with 4xx and a coded error, storing nothing', async () => {
    const before = await h.ctl.deps.store.db.selectFrom('enroll_tokens').select('id').execute();
    const beforeTokens = await h.ctl.deps.store.db.selectFrom('api_tokens').select('id').execute();
    const rejectsBefore = await h.ctl.deps.metrics.total(h.ctl.deps.metrics.httpRejects);
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 300 }),
      fc
        .dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }))
        .map((o) => JSON.stringify({ ...o, zzUnknown: 1 })),
      fc.constant('{"__proto__":{"admin":true},"name":"x","role":"admin"}'),
      fc.constant('{"constructor":{"prototype":{"admin":true}}}'),
      fc.integer({ min: 100, max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
    );
    const routes = [
      ['POST', '/api/v1/enroll', undefined],
      ['POST', '/api/v1/tokens', h.adminToken],
      ['POST', '/api/v1/enroll-tokens', h.adminToken],
      ['PUT', `/api/v1/devices/${d.deviceId}/desired`, h.adminToken],
      ['PUT', `/api/v1/devices/${d.deviceId}/tags`, h.adminToken],
    ] as const;
    const samples = fc.sample(fc.tuple(fc.constantFrom(...routes), body), { numRuns: 2000, seed: 1337 });
    let refused = 0;
    for (const [[method, url, token], payload] of samples) {
      const res = await fetch(`${h.ctl.url}${url}`, {
        method,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: payload,
      });
      const text = await res.text();
      // A few generated bodies are valid (e.g. {"tags": []} after merging); those may succeed.
      if (res.status < 300) continue;
      refused++;
      expect({ url, status: res.status }).toEqual({ url, status: expect.any(Number) });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      const parsed = JSON.parse(text) as { error: { code: string; message: string } };
      expect(parsed.error.code).toMatch(/^E_[A-Z0-9_]+$/);
      expect(text).not.toMatch(/\bat .+:\d+:\d+/);
    }
    expect(refused).toBeGreaterThan(samples.length * 0.95);
    expect(await h.ctl.deps.store.db.selectFrom('enroll_tokens').select('id').execute()).toHaveLength(
      before.length,
    );
    expect(await h.ctl.deps.store.db.selectFrom('api_tokens').select('id').execute()).toHaveLength(
      beforeTokens.length,
    );
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    const rejectsAfter = await h.ctl.deps.metrics.total(h.ctl.deps.metrics.httpRejects);
    expect(rejectsAfter - rejectsBefore).toBe(refused);
  });
});
