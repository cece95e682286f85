import { createLogger, ManualClock } from '@perch/shared';
import { audit } from '../src/audit';
import { openSqliteStore, type Store } from '../src/db/open';
import { runRetention } from '../src/retention';

const DAY = 86_400_000;

async function addDevice(store: Store, id: string): Promise<void> {
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
      revoked_at: null,
      last_seen_at: null,
      online: 0,
      reported: null,
      reported_at: null,
    })
    .execute();
}

async function addEvent(
  store: Store,
  device: string,
  msgId: string,
  ts: number,
  receivedAt: number,
): Promise<void> {
  await store.db
    .insertInto('events')
    .values({
      msg_id: msgId,
      device_id: device,
      ts,
      event_id: msgId,
      phase: 'start',
      pipeline: 'p',
      label: 'person',
      score: 0.9,
      body: '{}',
      received_at: receivedAt,
    })
    .execute();
}

async function addTelemetry(store: Store, device: string, msgId: string, ts: number): Promise<void> {
  await store.db
    .insertInto('telemetry')
    .values({ msg_id: msgId, device_id: device, ts, received_at: ts, metrics: '{}', info: null })
    .execute();
}

describe('retention', () => {
  let store: Store;
  const clock = new ManualClock(1000 * DAY);
  const settings = { telemetryDays: 30, eventsDays: 90, auditDays: 365 };

  beforeEach(async () => {
    store = await openSqliteStore({ file: ':memory:' });
    await addDevice(store, 'cam-1');
    await addDevice(store, 'cam-2');
  });
  afterEach(async () => {
    await store.close();
  });

  it('deletes telemetry, events and audit entries past their horizons, keeps newer ones, and logs the counts', async () => {
    const now = clock.now();
    await addTelemetry(store, 'cam-1', 't-old', now - 31 * DAY);
    await addTelemetry(store, 'cam-1', 't-new', now - 29 * DAY);
    // Events several days apart past the horizon: the trim walks them day by day.
    await addEvent(store, 'cam-1', 'e-old-1', now - 400 * DAY, now - 400 * DAY);
    await addEvent(store, 'cam-2', 'e-old-2', now - 91 * DAY, now - 91 * DAY);
    await addEvent(store, 'cam-2', 'e-old-3', now - 90 * DAY - 1, now - 90 * DAY - 1);
    await addEvent(store, 'cam-1', 'e-new', now - 89 * DAY, now - 89 * DAY);
    // A device clock far behind: what counts is when the controller received it.
    await addEvent(store, 'cam-2', 'e-bad-clock', 5, now - DAY);
    await audit(store.db, now - 366 * DAY, { actor: 'admin', action: 'device.revoke', target: 'cam-1' });
    await audit(store.db, now - 364 * DAY, { actor: 'admin', action: 'device.revoke', target: 'cam-2' });

    const logger = createLogger({ namespace: 'test', silent: true });
    const info = jest.spyOn(logger, 'info');
    const result = await runRetention(store, clock.now(), settings, logger);

    expect(result).toEqual({ telemetry: 1, events: 3, audit: 1 });
    const events = await store.db.selectFrom('events').select('msg_id').orderBy('msg_id').execute();
    expect(events.map((e) => e.msg_id)).toEqual(['e-bad-clock', 'e-new']);
    const telemetry = await store.db.selectFrom('telemetry').select('msg_id').execute();
    expect(telemetry.map((t) => t.msg_id)).toEqual(['t-new']);
    const auditRows = await store.db.selectFrom('audit_log').select('target').execute();
    expect(auditRows.map((a) => a.target)).toEqual(['cam-2']);
    expect(info).toHaveBeenCalledWith('retention pass done', {
      removed: { telemetry: 1, events: 3, audit: 1 },
    });
  });

  it('removes rows as the clock moves past their horizon, and nothing twice', async () => {
    const logger = createLogger({ namespace: 'test', silent: true });
    const clk = new ManualClock(1000 * DAY);
    await addEvent(store, 'cam-1', 'e-1', clk.now(), clk.now());
    await audit(store.db, clk.now(), { actor: 'admin', action: 'token.create', target: 't1' });
    expect(await runRetention(store, clk.now(), settings, logger)).toEqual({
      telemetry: 0,
      events: 0,
      audit: 0,
    });
    await clk.advance(90 * DAY + 1);
    expect(await runRetention(store, clk.now(), settings, logger)).toEqual({
      telemetry: 0,
      events: 1,
      audit: 0,
    });
    await clk.advance(275 * DAY);
    expect(await runRetention(store, clk.now(), settings, logger)).toEqual({
      telemetry: 0,
      events: 0,
      audit: 1,
    });
  });
});
