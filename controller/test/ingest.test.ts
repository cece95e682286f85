import { createLogger, ManualClock } from '@perch/shared';
import { openSqliteStore, type Store } from '../src/db/open';
import { ControllerMetrics } from '../src/metrics';
import { Ingest } from '../src/mqtt/ingest';

const logger = createLogger({ namespace: 'test', silent: true });

async function addDevice(store: Store, id: string, revoked = false): Promise<void> {
  await store.db
    .insertInto('devices')
    .values({
      id,
      public_key: 'k',
      key_fingerprint: `f-${id}`,
      mqtt_password_hash: 'h',
      device_token_hash: `t-${id}`,
      hostname: null,
      enroll_token_id: 'e',
      enrolled_at: 0,
      revoked_at: revoked ? 1 : null,
      last_seen_at: null,
      online: 0,
      reported: null,
      reported_at: null,
    })
    .execute();
}

const tel = (id: string, metrics: Record<string, number> = { 'system.cpu_percent': 5 }) =>
  Buffer.from(JSON.stringify({ v: 1, id, ts: 1000, metrics }));

describe.each([
  ['prepared statements (SQLite fast path)', false],
  ['portable kysely queries', true],
])('ingest with %s', (_name, portable) => {
  let store: Store;
  let metrics: ControllerMetrics;
  let ingest: Ingest;
  const clock = new ManualClock();
  beforeEach(async () => {
    const real = await openSqliteStore({ file: ':memory:' });
    store = portable
      ? { db: real.db, transaction: real.transaction, durable: real.durable, close: real.close }
      : real;
    metrics = new ControllerMetrics();
    ingest = new Ingest({ store, clock, logger, metrics, topicPrefix: 'perch', maxPayloadBytes: 4096 });
    await addDevice(store, 'cam-1');
    await addDevice(store, 'gone', true);
  });
  afterEach(async () => {
    await store.close();
  });

  it('stores each message id once, however often it is redelivered', async () => {
    for (let i = 0; i < 3; i++)
      ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: tel('message-0001') });
    await ingest.flush();
    ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: tel('message-0001') });
    ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: tel('message-0002') });
    await ingest.flush();
    const rows = await store.db.selectFrom('telemetry').select('msg_id').orderBy('msg_id').execute();
    expect(rows.map((r) => r.msg_id)).toEqual(['message-0001', 'message-0002']);
    expect(await metrics.total(metrics.ingestMessages)).toBe(2);
    expect(
      (await metrics.ingestRejects.get()).values.find((v) => v.labels.code === 'E_MQTT_DUPLICATE')?.value,
    ).toBe(3);
  });

  it('deduplicates inside one large batch too (multi-row statements)', async () => {
    for (let i = 0; i < 300; i++)
      ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: tel(`bulk-message-${i % 150}`) });
    await ingest.flush();
    expect(await store.db.selectFrom('telemetry').select('msg_id').execute()).toHaveLength(150);
    expect(await metrics.total(metrics.ingestMessages)).toBe(150);
  });

  it('writes after the flush delay on the injected clock, without being asked', async () => {
    ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: tel('message-0003') });
    expect(await store.db.selectFrom('telemetry').select('msg_id').execute()).toHaveLength(0);
    await clock.advance(100);
    await ingest.flush();
    expect(await store.db.selectFrom('telemetry').select('msg_id').execute()).toHaveLength(1);
  });

  it('rejects unknown and revoked devices, sender mismatches and bad topics, with codes', async () => {
    ingest.accept({ topic: 'perch/v1/devices/nobody/telemetry', payload: tel('message-0004') });
    ingest.accept({ topic: 'perch/v1/devices/gone/telemetry', payload: tel('message-0005') });
    ingest.accept({
      topic: 'perch/v1/devices/cam-1/telemetry',
      payload: tel('message-0006'),
      senderId: 'other',
    });
    ingest.accept({ topic: 'perch/v1/devices/cam-1/desired', payload: tel('message-0007') });
    ingest.accept({ topic: 'elsewhere/x', payload: tel('message-0008') });
    ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: Buffer.alloc(5000, 0x20) });
    await ingest.flush();
    expect(await store.db.selectFrom('telemetry').select('msg_id').execute()).toHaveLength(0);
    const codes = Object.fromEntries(
      (await metrics.ingestRejects.get()).values.map((v) => [v.labels.code, v.value]),
    );
    expect(codes).toEqual({
      E_MQTT_UNKNOWN_DEVICE: 2,
      E_MQTT_SENDER_MISMATCH: 1,
      E_TOPIC_UNKNOWN: 2,
      E_PAYLOAD_TOO_LARGE: 1,
    });
    expect(ingest.processed).toBe(6);
  });

  it('tracks online state, last seen and the reported state', async () => {
    ingest.accept({
      topic: 'perch/v1/devices/cam-1/status',
      payload: Buffer.from(JSON.stringify({ v: 1, state: 'online', ts: 5 })),
    });
    const reported = {
      v: 1,
      ts: 6,
      rev: 0,
      settled: true,
      models: [],
      pipelines: [],
      agent: { version: '0.1.0', startedAt: 1 },
    };
    ingest.accept({
      topic: 'perch/v1/devices/cam-1/reported',
      payload: Buffer.from(JSON.stringify(reported)),
    });
    await ingest.flush();
    const d = await store.db
      .selectFrom('devices')
      .selectAll()
      .where('id', '=', 'cam-1')
      .executeTakeFirstOrThrow();
    expect(d.online).toBe(1);
    expect(d.last_seen_at).toBe(clock.now());
    expect(JSON.parse(d.reported ?? 'null')).toEqual(reported);
  });

  it('trims telemetry older than the retention horizon', async () => {
    ingest.accept({ topic: 'perch/v1/devices/cam-1/telemetry', payload: tel('message-0009') });
    await ingest.flush();
    expect(await Ingest.trim(store, 500)).toBe(0);
    expect(await Ingest.trim(store, 2000)).toBe(1);
  });
});
