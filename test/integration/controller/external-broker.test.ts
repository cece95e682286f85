import { controllerConfigSchema, startController } from '@perch/controller';
import { tempDir } from '../../helpers/tmp';
import { topics } from '@perch/shared';
import {
  api,
  connectDevice,
  enroll,
  silentLogger,
  startDynsecMosquitto,
  startHarness,
  telemetry,
  type Harness,
} from './harness';
import { waitFor } from '../../helpers/wait';

jest.setTimeout(60_000);

describe('external broker mode', () => {
  it('fails start with E_BROKER_UNAVAILABLE when the broker refuses the controller credentials', async () => {
    const m = await startDynsecMosquitto();
    const { dir, cleanup } = tempDir('perch-ctl-ext-');
    try {
      const config = controllerConfigSchema.parse({
        home: dir,
        http: { host: '127.0.0.1', port: 0 },
        mqtt: { mode: 'external', url: m.broker.url, username: m.username, password: 'wrong-password' },
        limits: {},
        retention: {},
        tuf: {},
      });
      await expect(startController(config, { logger: silentLogger, cron: false })).rejects.toMatchObject({
        code: 'E_BROKER_UNAVAILABLE',
      });
    } finally {
      await m.broker.close();
      cleanup();
    }
  });

  describe('device isolation through the dynamic-security roles', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ mode: 'external' });
    });
    afterAll(async () => {
      await h?.close();
    });

    it('keeps a device to its own subtree: foreign publishes are dropped, foreign subscriptions refused', async () => {
      const a = await enroll(h, undefined, { name: 'iso-a' });
      const b = await enroll(h, undefined, { name: 'iso-b' });
      const ca = await connectDevice(a);
      try {
        const grant = async (topic: string): Promise<number> => {
          try {
            return (await ca.subscribeAsync(topic, { qos: 1 }))[0]?.qos ?? -1;
          } catch (err) {
            return (err as { packet?: { granted?: number[] } }).packet?.granted?.[0] ?? -1;
          }
        };
        expect(await grant(topics.desired(a.deviceId))).toBe(1);
        expect(await grant(topics.desired(b.deviceId))).toBe(128);
        expect(await grant(topics.telemetry(b.deviceId))).toBe(128);
        // Mosquitto acknowledges a denied QoS 1 publish from an MQTT 3.1.1 client and drops it.
        await ca
          .publishAsync(topics.telemetry(b.deviceId), telemetry({ 'x.y': 1 }, 'foreign-0001'), { qos: 1 })
          .catch(() => undefined);
        await ca
          .publishAsync(
            topics.desired(a.deviceId),
            JSON.stringify({ v: 1, rev: 99, ts: 1, models: [], pipelines: [] }),
            { qos: 1, retain: true },
          )
          .catch(() => undefined);
        await ca.publishAsync(topics.telemetry(a.deviceId), telemetry({ 'x.y': 2 }, 'own-0000001'), {
          qos: 1,
        });
        await waitFor(
          async () =>
            (await h.ctl.deps.store.db
              .selectFrom('telemetry')
              .select('msg_id')
              .where('msg_id', '=', 'own-0000001')
              .executeTakeFirst()) !== undefined,
          {
            what: 'own telemetry stored',
          },
        );
        const foreign = await h.ctl.deps.store.db
          .selectFrom('telemetry')
          .select('msg_id')
          .where('msg_id', '=', 'foreign-0001')
          .execute();
        expect(foreign).toHaveLength(0);
        const desired = await api(h, 'GET', `/api/v1/devices/${a.deviceId}/desired`, h.adminToken);
        expect(desired.status).toBe(404);
      } finally {
        ca.end(true);
      }
    });
  });
});
