import type { MqttClient } from 'mqtt';
import { createLogger, topics } from '@perch/shared';
import { controllerConfigSchema, startController } from '@perch/controller';
import { brokerMode } from '../../../controller/src/config';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import { fleetEventsTopic, homeAssistantDiscoveryTopic } from '../../../controller/src/broker/dynsec-acl';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import {
  connect5,
  connectRefusal,
  endAll,
  pubackCode,
  recorder,
  subackCodes,
} from '../integrations/mqtt-clients';
import {
  api,
  enroll,
  EXTERNAL_USERS,
  silentLogger,
  startHarness,
  telemetry,
  type Enrolled,
  type Harness,
} from './harness';

jest.setTimeout(60_000);

const NOT_AUTHORIZED = 0x87;

function event(id: string, label = 'person') {
  return JSON.stringify({
    v: 1,
    id,
    ts: Date.now(),
    eventId: `ev-${id}`,
    phase: 'start',
    pipeline: 'front-door',
    label,
    score: 0.9,
  });
}

function parse(base: Record<string, unknown>) {
  return controllerConfigSchema.safeParse({ home: '/tmp/x', ...base });
}

describe('broker mode config', () => {
  it('names what mode mosquitto is missing', () => {
    const r = parse({ mqtt: { mode: 'mosquitto', url: 'mqtt://127.0.0.1:1883' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(
      /mqtt.mode 'mosquitto' needs .*dynamic-security admin.*missing: mqtt.username, mqtt.password/,
    );
  });

  it('treats external + dynamicSecurity as an alias of mosquitto and refuses contradictions', () => {
    const alias = parse({
      mqtt: { mode: 'external', dynamicSecurity: true, url: 'mqtt://h', username: 'u', password: 'p' },
    });
    expect(alias.success && brokerMode(alias.data.mqtt)).toBe('mosquitto');
    const plain = parse({ mqtt: { mode: 'external', url: 'mqtt://h', username: 'u', password: 'p' } });
    expect(plain.success && brokerMode(plain.data.mqtt)).toBe('external');
    const contradiction = parse({
      mqtt: { mode: 'mosquitto', dynamicSecurity: false, url: 'mqtt://h', username: 'u', password: 'p' },
    });
    expect(contradiction.error?.issues[0]?.message).toMatch(/always uses dynamic security/);
    const embedded = parse({ mqtt: { mode: 'embedded', dynamicSecurity: true } });
    expect(embedded.error?.issues[0]?.message).toMatch(/external broker only/);
  });

  it('refuses an admin login named like the runtime client the controller creates with it', () => {
    // The admin would be turned into the runtime client (its password changed under it).
    for (const mqtt of [
      { mode: 'mosquitto', url: 'mqtt://h', username: 'perch-controller', password: 'p' },
      {
        mode: 'external',
        dynamicSecurity: true,
        url: 'mqtt://h',
        username: 'perch-controller',
        password: 'p',
      },
    ]) {
      const r = parse({ mqtt });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.message).toMatch(/admin must have another name/);
    }
    // A plain external broker may call the controller's login anything.
    expect(
      parse({ mqtt: { mode: 'external', url: 'mqtt://h', username: 'perch-controller', password: 'p' } })
        .success,
    ).toBe(true);
  });
});

describe('external mode: a generic MQTT 5 broker whose users the operator manages', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ mode: 'external' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('stores telemetry of a device the operator created in the broker', async () => {
    const d = await enroll(h, undefined, { name: 'ext-device-1' });
    const c = await connect5(h.mosquitto?.url ?? '', {
      username: d.deviceId,
      password: EXTERNAL_USERS['ext-device-1'],
      clientId: d.deviceId,
    });
    try {
      expect(await pubackCode(c, topics.telemetry(d.deviceId), telemetry({ 'x.y': 1 }, 'ext-0000001'))).toBe(
        0,
      );
      await waitFor(
        async () =>
          (await h.ctl.deps.store.db
            .selectFrom('telemetry')
            .select('msg_id')
            .where('msg_id', '=', 'ext-0000001')
            .executeTakeFirst()) !== undefined,
        { what: 'telemetry stored' },
      );
    } finally {
      await endAll([c]);
    }
  });

  it('fails start with E_BROKER_UNAVAILABLE when the broker refuses the controller credentials', async () => {
    const { dir, cleanup } = tempDir('perch-ctl-ext-');
    try {
      const config = controllerConfigSchema.parse({
        home: dir,
        http: { host: '127.0.0.1', port: 0 },
        mqtt: { mode: 'external', url: h.mosquitto?.url, username: 'perch-controller', password: 'wrong' },
      });
      await expect(startController(config, { logger: silentLogger, cron: false })).rejects.toMatchObject({
        code: 'E_BROKER_UNAVAILABLE',
      });
    } finally {
      cleanup();
    }
  });
});

describe('mosquitto mode: the shipped mosquitto.conf, driven through dynamic security (MQTT 5)', () => {
  let h: Harness;
  let a: Enrolled;
  let b: Enrolled;
  let admin: MqttClient;
  let dynsec: DynsecClient;
  const clients: MqttClient[] = [];
  const url = () => h.perch?.broker.url ?? '';
  const device = async (d: Enrolled) => {
    const c = await connect5(url(), {
      username: d.mqtt.username,
      password: d.mqtt.password,
      clientId: d.mqtt.clientId,
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    h = await startHarness({ mode: 'mosquitto' });
    a = await enroll(h, undefined, { name: 'mq-a' });
    b = await enroll(h, undefined, { name: 'mq-b' });
    // The test's own view of the broker: the admin login of the README bootstrap.
    admin = await connect5(url(), {
      username: h.perch?.admin.username,
      password: h.perch?.admin.password,
      clientId: 'test-admin',
    });
    dynsec = new DynsecClient({ client: admin, logger: createLogger({ namespace: 't', silent: true }) });
    await dynsec.start();
  });
  afterAll(async () => {
    dynsec?.stop();
    await endAll([admin, ...clients]);
    await h?.close();
  });

  it('fails start with E_BROKER_UNAVAILABLE when the admin password is wrong', async () => {
    const { dir, cleanup } = tempDir('perch-ctl-mq-');
    try {
      const config = controllerConfigSchema.parse({
        home: dir,
        http: { host: '127.0.0.1', port: 0 },
        mqtt: { mode: 'mosquitto', url: url(), username: h.perch?.admin.username, password: 'wrong' },
      });
      await expect(startController(config, { logger: silentLogger, cron: false })).rejects.toMatchObject({
        code: 'E_BROKER_UNAVAILABLE',
      });
    } finally {
      cleanup();
    }
  });

  it('refuses external mode with a login the broker does not let read device topics', async () => {
    // A client without roles: the dynamic-security default denies every subscription (SUBACK 0x87).
    await dynsec.createClient({ username: 'no-rights', password: 'no-rights-pw' });
    const { dir, cleanup } = tempDir('perch-ctl-acl-');
    try {
      const config = controllerConfigSchema.parse({
        home: dir,
        http: { host: '127.0.0.1', port: 0 },
        mqtt: { mode: 'external', url: url(), username: 'no-rights', password: 'no-rights-pw' },
      });
      const result = await startController(config, { logger: silentLogger, cron: false }).then(
        async (ctl) => {
          await ctl.stop();
          return new Error('started');
        },
        (e: unknown) => e,
      );
      expect(result).toMatchObject({ code: 'E_BROKER_UNAVAILABLE' });
      expect((result as Error).message).toMatch(/refused the controller's subscriptions/);
    } finally {
      cleanup();
    }
  });

  it('creates a client and a role per device on enrollment, with the client id pinned', async () => {
    const info = await dynsec.getClient(a.deviceId);
    expect(info).toMatchObject({ username: a.deviceId, clientid: a.deviceId });
    expect(info?.roles?.map((r) => r.rolename)).toEqual([`perch-device-${a.deviceId}`]);
    expect((await dynsec.getClient('perch-controller'))?.roles?.map((r) => r.rolename)).toEqual([
      'perch-controller',
    ]);
    const c = await device(a);
    expect(c.connected).toBe(true);
    expect(
      await connectRefusal(url(), { username: a.mqtt.username, password: a.mqtt.password, clientId: 'x' }),
    ).toBe(NOT_AUTHORIZED);
  });

  it('refuses anonymous clients and wrong passwords with CONNACK 0x87', async () => {
    expect(await connectRefusal(url())).toBe(NOT_AUTHORIZED);
    expect(
      await connectRefusal(url(), { username: a.deviceId, password: 'wrong', clientId: a.deviceId }),
    ).toBe(NOT_AUTHORIZED);
  });

  it("keeps device A out of B's subtree, desired, cmd and the fleet topic; its own data is stored", async () => {
    const ca = await device(a);
    for (const topic of [
      topics.telemetry(b.deviceId),
      topics.events(b.deviceId),
      topics.status(b.deviceId),
      topics.desired(a.deviceId),
      topics.cmd(a.deviceId, 'report-now'),
      topics.desired(b.deviceId),
      fleetEventsTopic(),
      homeAssistantDiscoveryTopic(b.deviceId),
      `${topics.subtree(b.deviceId).slice(0, -1)}ha/state`,
    ]) {
      expect([topic, await pubackCode(ca, topic, event('forged-0001'))]).toEqual([topic, NOT_AUTHORIZED]);
    }
    const forbidden = [
      topics.desired(b.deviceId),
      topics.cmdAll(b.deviceId),
      topics.telemetry(b.deviceId),
      topics.all('events'),
      fleetEventsTopic(),
      '#',
    ];
    expect(await subackCodes(ca, forbidden)).toEqual(forbidden.map(() => NOT_AUTHORIZED));
    expect(await subackCodes(ca, [topics.desired(a.deviceId), topics.cmdAll(a.deviceId)])).toEqual([1, 1]);
    // Home Assistant: its own discovery topic and its `ha/` state topics.
    expect(await pubackCode(ca, homeAssistantDiscoveryTopic(a.deviceId), '{}')).toBe(0);
    expect(await pubackCode(ca, `${topics.subtree(a.deviceId).slice(0, -1)}ha/state`, 'on')).toBe(0);
    expect(await pubackCode(ca, topics.telemetry(a.deviceId), telemetry({ 'x.y': 2 }, 'own-mq-0001'))).toBe(
      0,
    );
    await waitFor(
      async () =>
        (await h.ctl.deps.store.db
          .selectFrom('telemetry')
          .select('msg_id')
          .where('msg_id', '=', 'own-mq-0001')
          .executeTakeFirst()) !== undefined,
      { what: 'own telemetry stored' },
    );
    const forged = await h.ctl.deps.store.db.selectFrom('events').select('msg_id').execute();
    expect(forged.filter((r) => r.msg_id === 'forged-0001')).toEqual([]);
  });

  it('delivers desired state set through the API to the device', async () => {
    const ca = await device(a);
    const seen = recorder(ca);
    expect(await subackCodes(ca, [topics.desired(a.deviceId)])).toEqual([1]);
    const res = await api(h, 'PUT', `/api/v1/devices/${a.deviceId}/desired`, h.adminToken, {
      models: [],
      pipelines: [],
    });
    expect(res.status).toBe(200);
    await waitFor(() => seen.find((m) => m.topic === topics.desired(a.deviceId) && m.payload.length > 0), {
      what: 'desired state',
    });
  });

  it('re-publishes stored events on the fleet topic to an integrations client, once', async () => {
    await dynsec.createClient({
      username: 'fleet-reader',
      password: 'fleet-reader-pw',
      roles: ['perch-integrations'],
    });
    const reader = await connect5(url(), {
      username: 'fleet-reader',
      password: 'fleet-reader-pw',
      clientId: 'fr',
    });
    clients.push(reader);
    const seen = recorder(reader);
    expect(await subackCodes(reader, [fleetEventsTopic(), topics.all('events')])).toEqual([
      1,
      NOT_AUTHORIZED,
    ]);
    expect(await pubackCode(reader, fleetEventsTopic(), '{}')).toBe(NOT_AUTHORIZED);
    const cb = await device(b);
    expect(await pubackCode(cb, topics.events(b.deviceId), event('fleet-mq-0001', 'cat'))).toBe(0);
    // A redelivery of the same message id is stored once and re-published once.
    expect(await pubackCode(cb, topics.events(b.deviceId), event('fleet-mq-0001', 'cat'))).toBe(0);
    expect(await pubackCode(cb, topics.events(b.deviceId), event('fleet-mq-0002', 'dog'))).toBe(0);
    await waitFor(() => seen.find((m) => m.payload.toString().includes('fleet-mq-0002')), {
      what: 'fleet event',
    });
    const got = seen.map((m) => ({
      topic: m.topic,
      retain: m.retain,
      body: JSON.parse(m.payload.toString()) as unknown,
    }));
    expect(got).toEqual([
      {
        topic: fleetEventsTopic(),
        retain: false,
        body: expect.objectContaining({ id: 'fleet-mq-0001', label: 'cat', deviceId: b.deviceId }),
      },
      {
        topic: fleetEventsTopic(),
        retain: false,
        body: expect.objectContaining({ id: 'fleet-mq-0002', label: 'dog', deviceId: b.deviceId }),
      },
    ]);
  });

  it('revocation through the API kicks the live session, refuses the next login and clears HA discovery', async () => {
    const c = await enroll(h, undefined, { name: 'mq-c' });
    const cc = await device(c);
    expect(
      await pubackCode(cc, homeAssistantDiscoveryTopic(c.deviceId), '{"name":"c"}', { retain: true }),
    ).toBe(0);
    const watcher = recorder(admin);
    expect(await subackCodes(admin, [homeAssistantDiscoveryTopic(c.deviceId)])).toEqual([1]);
    await waitFor(() => watcher.find((m) => m.payload.toString() === '{"name":"c"}'), {
      what: 'retained discovery',
    });
    const closed = new Promise<void>((resolve) => cc.once('close', () => resolve()));
    const res = await api(h, 'POST', `/api/v1/devices/${c.deviceId}/revoke`, h.adminToken);
    expect(res.status).toBe(200);
    await closed;
    expect(cc.connected).toBe(false);
    expect((await dynsec.getClient(c.deviceId))?.disabled).toBe(true);
    expect(
      await connectRefusal(url(), {
        username: c.mqtt.username,
        password: c.mqtt.password,
        clientId: c.mqtt.clientId,
      }),
    ).toBe(NOT_AUTHORIZED);
    await waitFor(
      () =>
        watcher.find((m) => m.topic === homeAssistantDiscoveryTopic(c.deviceId) && m.payload.length === 0),
      { what: 'empty discovery payload' },
    );
    // A new subscriber finds nothing retained any more: only the marker published after it arrives.
    const late = await connect5(url(), {
      username: h.perch?.admin.username,
      password: h.perch?.admin.password,
      clientId: 'test-admin-late',
    });
    clients.push(late);
    const lateSeen = recorder(late);
    await subackCodes(late, [homeAssistantDiscoveryTopic(c.deviceId), '$SYS/broker/uptime']);
    await waitFor(() => lateSeen.find((m) => m.topic === '$SYS/broker/uptime'), { what: '$SYS marker' });
    expect(lateSeen.filter((m) => m.topic === homeAssistantDiscoveryTopic(c.deviceId))).toEqual([]);
  });
});

describe('mosquitto mode with another Home Assistant discovery prefix', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    h = await startHarness({ mode: 'mosquitto', config: { homeAssistant: { discoveryPrefix: 'ha-test' } } });
  });
  afterAll(async () => {
    await endAll(clients);
    await h?.close();
  });

  it('lets the device publish discovery only under that prefix and clears it there on revocation', async () => {
    const url = h.perch?.broker.url ?? '';
    const d = await enroll(h, undefined, { name: 'mq-ha' });
    const c = await connect5(url, {
      username: d.mqtt.username,
      password: d.mqtt.password,
      clientId: d.mqtt.clientId,
    });
    const watcher = await connect5(url, {
      username: h.perch?.admin.username,
      password: h.perch?.admin.password,
      clientId: 'test-watcher',
    });
    clients.push(c, watcher);
    const topic = homeAssistantDiscoveryTopic(d.deviceId, 'ha-test');
    expect(await pubackCode(c, homeAssistantDiscoveryTopic(d.deviceId), '{}')).toBe(NOT_AUTHORIZED);
    expect(await pubackCode(c, topic, '{"name":"ha"}', { retain: true })).toBe(0);
    const seen = recorder(watcher);
    expect(await subackCodes(watcher, [topic])).toEqual([1]);
    await waitFor(() => seen.find((m) => m.payload.length > 0), { what: 'retained discovery' });
    expect((await api(h, 'POST', `/api/v1/devices/${d.deviceId}/revoke`, h.adminToken)).status).toBe(200);
    await waitFor(() => seen.find((m) => m.topic === topic && m.payload.length === 0), {
      what: 'discovery removal',
    });
  });
});
