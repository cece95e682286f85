import fs from 'node:fs';
import path from 'node:path';
import { topics } from '@perch/shared';
import { connectDevice, enroll, EXTERNAL_USERS, startHarness, type Harness } from './harness';
import { waitFor } from '../../helpers/wait';

/**
 * A controller restart (an upgrade, a crash) must not lose what devices publish meanwhile: devices get
 * their PUBACK from the broker, so their outboxes have already let go. The controller's MQTT session
 * is persistent under a client id kept in its data folder, and the broker queues for it until it is
 * back.
 */
describe.each(['mosquitto', 'external'] as const)('controller restart in mode %s', (mode) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ mode });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('keeps one client id and receives what devices published while it was stopped', async () => {
    const idFile = path.join(h.home, 'mqtt-client-id');
    const id = fs.readFileSync(idFile, 'utf8').trim();
    expect(id).toMatch(/^perch-controller-[0-9a-f]{12}$/);
    expect(fs.statSync(idFile).mode & 0o777).toBe(0o600);

    // Mode mosquitto: the login the controller made at enrollment. Mode external: the operator made
    // the broker's users; the device is still enrolled to be in the registry.
    const d = await enroll(h, undefined, mode === 'external' ? { name: 'ext-device-1' } : {});
    const deviceId = d.deviceId;
    const client = await connectDevice(
      d,
      mode === 'external'
        ? { url: h.mosquitto!.url, username: deviceId, password: EXTERNAL_USERS['ext-device-1'] }
        : {},
    );
    const count = async () =>
      Number(
        (
          await h.ctl.deps.store.db
            .selectFrom('telemetry')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('device_id', '=', deviceId)
            .executeTakeFirst()
        )?.n ?? 0,
      );
    const publish = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) {
        const msg = { v: 1, id: `restart-${i}-abcdef`, ts: Date.now(), metrics: { 'system.load1': i } };
        await client.publishAsync(topics.telemetry(deviceId), JSON.stringify(msg), { qos: 1 });
      }
    };
    try {
      await publish(0, 10);
      await waitFor(async () => (await count()) === 10, { what: '10 rows before the restart' });
      await h.restart(() => publish(10, 50)); // every one acknowledged by the broker, none stored yet
      await waitFor(async () => (await count()) === 60, { what: 'the 50 published while stopped' });
      expect(fs.readFileSync(idFile, 'utf8').trim()).toBe(id);
    } finally {
      await client.endAsync();
    }
  });
});
