import mqtt from 'mqtt';
import { topics } from '@perch/shared';
import { EmbeddedBroker } from '@perch/controller';
import {
  api,
  connectDevice,
  enroll,
  silentLogger,
  startHarness,
  telemetry,
  waitClosed,
  type Enrolled,
  type Harness,
} from './harness';
import { waitFor } from '../../helpers/wait';

jest.setTimeout(60_000);

describe('embedded broker ACL', () => {
  let h: Harness;
  let a: Enrolled;
  let b: Enrolled;
  beforeAll(async () => {
    h = await startHarness({ mode: 'embedded', limits: {} });
    a = await enroll(h, undefined, { name: 'acl-a' });
    b = await enroll(h, undefined, { name: 'acl-b' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('refuses anonymous clients, wrong passwords and a client id other than the device id', async () => {
    const anon = new Promise<Error>((resolve) => {
      const c = mqtt.connect(a.mqtt.url, { reconnectPeriod: 0, protocolVersion: 4 });
      c.once('error', (err) => {
        c.end(true);
        resolve(err);
      });
      c.once('connect', () => {
        c.end(true);
        resolve(new Error('connected'));
      });
    });
    expect((await anon).message).not.toBe('connected');
    await expect(connectDevice(a, { password: 'pmq_wrong-password-that-is-long' })).rejects.toThrow();
    await expect(connectDevice(a, { clientId: 'someone-else' })).rejects.toThrow();
    await expect(connectDevice(a, { password: b.mqtt.password })).rejects.toThrow();
  });

  it('refuses MQTT 5 cleanly (aedes speaks 3.1.1) and keeps serving 3.1.1 clients', async () => {
    const v5 = await new Promise<string>((resolve) => {
      const c = mqtt.connect(a.mqtt.url, {
        username: a.mqtt.username,
        password: a.mqtt.password,
        clientId: a.mqtt.clientId,
        protocolVersion: 5,
        reconnectPeriod: 0,
      });
      c.once('connect', () => {
        c.end(true);
        resolve('connected');
      });
      c.once('error', (err) => {
        c.end(true);
        resolve(err.message);
      });
      c.once('close', () => resolve('closed'));
    });
    expect(v5).not.toBe('connected');
    const ok = await connectDevice(a);
    await ok.endAsync();
  });

  it("accepts the agent's Home Assistant topics without counting them as ingest rejects", async () => {
    const before = h.ctl.ingest.processed;
    const c = await connectDevice(a);
    try {
      await c.publishAsync(`perch/v1/devices/${a.deviceId}/ha/door/person/detected`, 'ON', {
        qos: 1,
        retain: true,
      });
      await c.publishAsync(`homeassistant/device/${a.deviceId}/config`, '{"dev":{}}', {
        qos: 1,
        retain: true,
      });
      await c.publishAsync(topics.telemetry(a.deviceId), telemetry({ 'x.y': 1 }, 'ha-check-0001'), {
        qos: 1,
      });
      await waitFor(() => h.ctl.ingest.processed > before, { what: 'telemetry processed' });
      expect(c.connected).toBe(true);
      expect(h.ctl.ingest.processed - before).toBe(1);
    } finally {
      await c.endAsync();
    }
  });

  it('lets a device subscribe only to its own desired and cmd topics', async () => {
    const c = await connectDevice(a);
    try {
      const grant = async (topic: string): Promise<number> => {
        try {
          const g = await c.subscribeAsync(topic, { qos: 1 });
          return g[0]?.qos ?? -1;
        } catch (err) {
          // mqtt.js rejects a refused subscription and carries the SUBACK with it.
          return (err as { packet?: { granted?: number[] } }).packet?.granted?.[0] ?? -1;
        }
      };
      const byTopic: Record<string, number> = {};
      for (const t of [
        topics.desired(a.deviceId),
        topics.cmdAll(a.deviceId),
        topics.desired(b.deviceId),
        topics.telemetry(b.deviceId),
        'perch/v1/fleet/events',
        'perch/#',
        '#',
      ]) {
        byTopic[t] = await grant(t);
      }
      expect(byTopic[topics.desired(a.deviceId)]).toBe(1);
      expect(byTopic[topics.cmdAll(a.deviceId)]).toBe(1);
      expect(byTopic[topics.desired(b.deviceId)]).toBe(128);
      expect(byTopic[topics.telemetry(b.deviceId)]).toBe(128);
      expect(byTopic['perch/v1/fleet/events']).toBe(128);
      expect(byTopic['perch/#']).toBe(128);
      expect(byTopic['#']).toBe(128);
    } finally {
      await c.endAsync();
    }
  });

  it.each([
    ['another device telemetry', () => topics.telemetry('acl-b')],
    ['its own desired state', () => topics.desired('acl-a')],
    ['a command to itself', () => topics.cmd('acl-a', 'report-now')],
    ['a topic outside the tree', () => 'other/topic'],
    ['the fleet topic', () => 'perch/v1/fleet/events'],
    ["another device's Home Assistant discovery", () => 'homeassistant/device/acl-b/config'],
    ["another device's Home Assistant state", () => 'perch/v1/devices/acl-b/ha/door/person/detected'],
  ])('disconnects a device that publishes to %s and stores nothing', async (_what, topic) => {
    const before = await h.ctl.deps.store.db.selectFrom('telemetry').select('msg_id').execute();
    const c = await connectDevice(a);
    const closed = waitClosed(c);
    c.publish(topic(), telemetry(), { qos: 1 });
    await closed;
    c.end(true);
    const after = await h.ctl.deps.store.db.selectFrom('telemetry').select('msg_id').execute();
    expect(after.length).toBe(before.length);
  });

  it('cuts a connection whose packet exceeds the size limit before buffering it', async () => {
    const c = await connectDevice(a);
    const closed = waitClosed(c);
    c.publish(topics.telemetry(a.deviceId), Buffer.alloc(300 * 1024, 0x20), { qos: 0 });
    await closed;
    c.end(true);
    const metrics = await api<string>(h, 'GET', '/metrics', h.adminToken);
    expect(typeof metrics.body).toBe('string');
  });

  it('marks a device online and offline from its status messages', async () => {
    const c = await connectDevice(a);
    c.publish(topics.status(a.deviceId), JSON.stringify({ v: 1, state: 'online', ts: Date.now() }), {
      qos: 1,
      retain: true,
    });
    await waitFor(
      async () =>
        (await api<{ online: boolean }>(h, 'GET', `/api/v1/devices/${a.deviceId}`, h.adminToken)).body.online,
      { what: 'online' },
    );
    const online = await api<{ devices: Array<{ id: string }> }>(
      h,
      'GET',
      '/api/v1/devices?online=true',
      h.adminToken,
    );
    expect(online.body.devices.map((d) => d.id)).toEqual([a.deviceId]);
    c.publish(topics.status(a.deviceId), JSON.stringify({ v: 1, state: 'offline', ts: Date.now() }), {
      qos: 1,
      retain: true,
    });
    await waitFor(
      async () =>
        !(await api<{ online: boolean }>(h, 'GET', `/api/v1/devices/${a.deviceId}`, h.adminToken)).body
          .online,
      { what: 'offline' },
    );
    await c.endAsync();
  });

  it('lets an integration read the fleet topic with a viewer API token, and nothing else', async () => {
    const viewer = await api<{ token: string }>(h, 'POST', '/api/v1/tokens', h.adminToken, {
      name: 'fleet-reader',
      role: 'viewer',
    });
    const login = (clientId: string, password = viewer.body.token) =>
      connectDevice(a, { username: 'fleet-reader', clientId, password });
    // A client id a device could have (or has) is refused, so no session takeover either way.
    await expect(login(a.deviceId)).rejects.toThrow();
    await expect(login('fleet-reader')).rejects.toThrow();
    await expect(login('integration:x', 'pat_not-a-real-token-at-all-000000000')).rejects.toThrow();
    const reader = await login('integration:fleet-reader');
    const device = await connectDevice(a);
    try {
      const seen: Array<{ topic: string; body: Record<string, unknown>; retain: boolean }> = [];
      reader.on('message', (topic, payload, packet) =>
        seen.push({
          topic,
          body: JSON.parse(payload.toString()) as Record<string, unknown>,
          retain: packet.retain,
        }),
      );
      const granted = async (topic: string) =>
        (
          await reader
            .subscribeAsync(topic, { qos: 1 })
            .catch((err: { packet?: { granted?: number[] } }) => [{ qos: err.packet?.granted?.[0] ?? -1 }])
        )[0]?.qos;
      expect(await granted('perch/v1/fleet/events')).toBe(1);
      expect(await granted(topics.all('events'))).toBe(128);
      expect(await granted('#')).toBe(128);
      const ev = {
        v: 1,
        id: 'fleet-emb-0001',
        ts: Date.now(),
        eventId: 'ev-fleet-emb-1',
        phase: 'start',
        pipeline: 'front-door',
        label: 'person',
        score: 0.7,
      };
      await device.publishAsync(topics.events(a.deviceId), JSON.stringify(ev), { qos: 1 });
      await waitFor(() => seen.length > 0, { what: 'fleet event' });
      expect(seen).toEqual([
        { topic: 'perch/v1/fleet/events', retain: false, body: { ...ev, deviceId: a.deviceId } },
      ]);
      // Read-only: a publish (even to the fleet topic) ends the session.
      const closed = waitClosed(reader);
      reader.publish('perch/v1/fleet/events', JSON.stringify({ ...ev, id: 'forged-fleet-01' }), { qos: 1 });
      await closed;
    } finally {
      reader.end(true);
      await device.endAsync();
    }
  });

  it('reports a taken MQTT port with E_BROKER_PORT_IN_USE', async () => {
    const broker = new EmbeddedBroker({
      store: h.ctl.deps.store,
      logger: silentLogger,
      metrics: h.ctl.deps.metrics,
      host: '127.0.0.1',
      port: h.ctl.mqttPort,
      topicPrefix: 'perch',
      maxPacketBytes: 1024,
      onMessage: () => undefined,
    });
    await expect(broker.start()).rejects.toMatchObject({ code: 'E_BROKER_PORT_IN_USE' });
    await broker.stop();
  });
});
