import mqtt from 'mqtt';
import {
  createLogger,
  ManualClock,
  systemClock,
  topics,
  type CommandMessage,
  type DesiredState,
} from '@perch/shared';
import { TestMosquitto } from '../../helpers/mosquitto';
import { waitFor } from '../../helpers/wait';
import { Counters } from '../../../agent/src/core/counters';
import { DEFAULT_SESSION_OPTIONS, MqttSession } from '../../../agent/src/core/mqtt/session';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import { startPerchBroker } from '../integrations/broker';
import { connect5, subackCodes } from '../integrations/mqtt-clients';

const logger = createLogger({ namespace: 'test', silent: true });
const DEVICE = 'dev-test-1';
const ACL = `user ${DEVICE}
topic readwrite perch/v1/devices/${DEVICE}/#
user observer
topic readwrite #
`;

jest.setTimeout(60_000);

describe('MqttSession against Mosquitto', () => {
  let broker: TestMosquitto;
  let observer: mqtt.MqttClient;
  const seen: Array<{ topic: string; payload: string; retain: boolean }> = [];

  beforeAll(async () => {
    broker = await TestMosquitto.start({ users: { [DEVICE]: 'secret', observer: 'obs' }, acl: ACL });
    observer = await mqtt.connectAsync(broker.url, {
      username: 'observer',
      password: 'obs',
      clientId: 'observer',
    });
    observer.on('message', (topic, payload, packet) =>
      seen.push({ topic, payload: payload.toString(), retain: packet.retain }),
    );
    await observer.subscribeAsync(`perch/v1/devices/${DEVICE}/status`, { qos: 1 });
  });
  afterAll(async () => {
    await observer.endAsync();
    await broker.close();
  });

  function session(
    handlers: Partial<ConstructorParameters<typeof MqttSession>[2]> = {},
    counters = new Counters(),
  ) {
    return new MqttSession(
      { url: broker.url, username: DEVICE, password: 'secret', clientId: DEVICE, topicPrefix: 'perch' },
      DEVICE,
      { onDesired: () => {}, onCommand: () => {}, onConnect: () => {}, onDisconnect: () => {}, ...handlers },
      systemClock,
      logger,
      counters,
      { ...DEFAULT_SESSION_OPTIONS, reconnectBaseMs: 50, reconnectCapMs: 200, willDelayS: 0 },
    );
  }

  it('connects with MQTT 5, publishes retained online, and offline on a clean stop', async () => {
    seen.length = 0;
    const s = session();
    s.start();
    await waitFor(() => s.connected, { what: 'connect' });
    expect(s.protocol).toBe(5);
    await waitFor(() => seen.some((m) => m.payload.includes('"online"')), { what: 'online' });
    await s.stop(2000, 'test');
    await waitFor(() => seen.some((m) => m.payload.includes('"offline"')), { what: 'offline' });
    const last = seen.at(-1)!;
    expect(JSON.parse(last.payload)).toMatchObject({ state: 'offline', reason: 'test' });
  });

  it('receives the retained desired state and commands through the decoder, rejecting bad ones', async () => {
    const desired: DesiredState = { v: 1, rev: 7, ts: 1, models: [], pipelines: [] };
    await observer.publishAsync(topics.desired(DEVICE), JSON.stringify(desired), { qos: 1, retain: true });
    const got: DesiredState[] = [];
    const cmds: Array<[string, CommandMessage]> = [];
    const counters = new Counters();
    const s = session({ onDesired: (d) => got.push(d), onCommand: (n, c) => cmds.push([n, c]) }, counters);
    s.start();
    await waitFor(() => got.length >= 1, { what: 'desired' });
    expect(got[0]!.rev).toBe(7);
    await observer.publishAsync(topics.desired(DEVICE), '{"v":1,"rev":"x"}', { qos: 1 });
    await observer.publishAsync(topics.desired(DEVICE), '{"__proto__":{"a":1}}', { qos: 1 });
    const cmd: CommandMessage = { v: 1, id: 'cmd-000001', ts: 1, expiresAt: Date.now() + 60_000 };
    await observer.publishAsync(topics.cmd(DEVICE, 'report-now'), JSON.stringify(cmd), { qos: 1 });
    await waitFor(() => cmds.length === 1, { what: 'command' });
    expect(cmds[0]![0]).toBe('report-now');
    await waitFor(() => counters.get('errors.e_mqtt_inbound_rejected') === 2, { what: 'rejections' });
    expect(counters.get('errors.e_payload_forbidden_key')).toBe(1);
    await s.stop();
    await observer.publishAsync(topics.desired(DEVICE), '', { qos: 1, retain: true });
  });

  it('reconnects by itself after the broker restarts and publishes online again', async () => {
    let connects = 0;
    const s = session({ onConnect: () => connects++ });
    s.start();
    await waitFor(() => connects === 1, { what: 'first connect' });
    await broker.restart();
    await waitFor(() => connects === 2, { what: 'reconnect', timeoutMs: 30_000 });
    expect(s.connected).toBe(true);
    await s.publishAcked(topics.events(DEVICE), Buffer.from('{}'));
    await s.stop();
  });

  it('refuses to publish while offline so the outbox keeps the message', async () => {
    const s = session();
    await expect(s.publishAcked(topics.events(DEVICE), Buffer.from('{}'))).rejects.toThrow('not connected');
  });

  it('publishes the retained offline will when the connection dies', async () => {
    // The observer lost its subscription in the broker restart above: make sure it is back.
    await waitFor(() => observer.connected, { what: 'observer reconnect' });
    await observer.subscribeAsync(`perch/v1/devices/${DEVICE}/status`, { qos: 1 });
    seen.length = 0;
    const s = session();
    s.start();
    await waitFor(() => s.connected, { what: 'connect' });
    // Cut the TCP connection under the client: the broker publishes the retained will.
    (s as unknown as { client: mqtt.MqttClient }).client.stream.destroy();
    await waitFor(() => seen.some((m) => m.payload.includes('connection lost')), { what: 'will' });
    // ...and the session comes back on its own with a retained online.
    const willAt = seen.findIndex((m) => m.payload.includes('connection lost'));
    await waitFor(() => seen.slice(willAt).some((m) => m.payload.includes('"online"')), {
      what: 'online again',
    });
    await s.stop();
  });

  it('backs off with full jitter through the injected clock while the broker is down', async () => {
    const clock = new ManualClock();
    const port = broker.port;
    await broker.stop();
    const draws: number[] = [];
    const s = new MqttSession(
      {
        url: `mqtt://127.0.0.1:${port}`,
        username: DEVICE,
        password: 'secret',
        clientId: DEVICE,
        topicPrefix: 'perch',
      },
      DEVICE,
      { onDesired: () => {}, onCommand: () => {}, onConnect: () => {}, onDisconnect: () => {} },
      clock,
      logger,
      new Counters(),
      { ...DEFAULT_SESSION_OPTIONS, reconnectBaseMs: 1000, reconnectCapMs: 4000 },
      undefined,
      () => {
        draws.push(1);
        return 0.999;
      },
    );
    s.start();
    await waitFor(() => draws.length === 1, { what: 'first failure' });
    for (let i = 0; i < 4; i++) {
      const before = draws.length;
      await clock.advance(4000);
      await waitFor(() => draws.length > before, { what: `failure ${i + 2}` });
    }
    expect(clock.pending()).toBe(1);
    await s.stop(0);
    await broker.restart();
  });

  it("routes extra topics to their listeners, and a refused one does not hold up the device's own", async () => {
    // Its own broker with the controller's device role (dynamic security): Home Assistant's birth
    // topic is allowed, `homeassistant/denied` is refused in the SUBACK.
    const perch = await startPerchBroker({ persistence: false });
    const own = perch.broker;
    const { username, password } = perch.admin;
    const admin = await mqtt.connectAsync(own.url, { username, password, protocolVersion: 5 });
    const dynsec = new DynsecClient({ client: admin, logger });
    await dynsec.start();
    await dynsec.provisionDevice({ deviceId: DEVICE, password: 'secret', clientId: DEVICE });
    await dynsec.ensureRole('observer', [
      { acltype: 'publishClientSend', topic: '#', allow: true, priority: 0 },
    ]);
    await dynsec.createClient({ username: 'observer', password: 'obs', roles: ['observer'] });
    dynsec.stop();
    await admin.endAsync();
    const counters = new Counters();
    const commands: string[] = [];
    const extra: string[] = [];
    let listenerCalls = 0;
    const s = new MqttSession(
      { url: own.url, username: DEVICE, password: 'secret', clientId: DEVICE, topicPrefix: 'perch' },
      DEVICE,
      {
        onDesired: () => {},
        onCommand: (name) => commands.push(name),
        onConnect: () => {},
        onDisconnect: () => {},
      },
      systemClock,
      logger,
      counters,
      { ...DEFAULT_SESSION_OPTIONS, reconnectBaseMs: 50, reconnectCapMs: 200, willDelayS: 0 },
    );
    s.subscribeExtra('homeassistant/status');
    s.subscribeExtra('homeassistant/denied');
    s.onConnected(() => listenerCalls++);
    s.onExtraMessage((topic, payload) => extra.push(`${topic}=${payload.toString()}`));
    const obs = await mqtt.connectAsync(own.url, {
      username: 'observer',
      password: 'obs',
      clientId: 'obs-extra',
    });
    try {
      // The premise: the broker refuses one of the two in its SUBACK.
      const probe = await connect5(own.url, { username: DEVICE, password: 'secret', clientId: DEVICE });
      expect(await subackCodes(probe, ['homeassistant/status', 'homeassistant/denied'])).toEqual([1, 0x87]);
      await probe.endAsync();
      s.start();
      await waitFor(() => listenerCalls === 1, { what: 'connect listener' });
      const cmd: CommandMessage = {
        v: 1,
        id: 'cmd-extra-0001',
        ts: Date.now(),
        expiresAt: Date.now() + 60_000,
      };
      await obs.publishAsync(topics.cmd(DEVICE, 'report-now'), JSON.stringify(cmd), { qos: 1 });
      await obs.publishAsync('homeassistant/status', 'online', { qos: 1 });
      await waitFor(() => commands.length === 1 && extra.length === 1, { what: 'command and birth message' });
      expect(extra).toEqual(['homeassistant/status=online']);
      expect(counters.snapshot()['errors.e_mqtt_inbound_rejected']).toBeUndefined();
      expect(() => s.subscribeExtra('homeassistant/+')).toThrow(/exact topic/);
    } finally {
      await s.stop(1000);
      await obs.endAsync();
      await perch.close();
    }
  });
});
