import mqtt, { type MqttClient } from 'mqtt';
import { createLogger, topics } from '@perch/shared';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import {
  HomeAssistantPublisher,
  MemoryHaStateStore,
  mqttClientLink,
  validateDiscoveryMessage,
  type HaPipeline,
} from '../../../agent/src/integrations/homeassistant';
import { waitFor } from '../../helpers/wait';
import { startPerchBroker, type PerchBroker } from './broker';
import { connect5, endAll, pubackCode, recorder, subackCodes } from './mqtt-clients';

const logger = createLogger({ namespace: 'test:ha', silent: true });
const DEVICE = 'cam-1';
const DISCOVERY = `homeassistant/device/${DEVICE}/config`;
const pipelines: HaPipeline[] = [
  { id: 'front-door', labels: ['person', 'car'], snapshots: true },
  { id: 'yard', labels: ['cat'] },
];

type Seen = ReturnType<typeof recorder>;

/** Asserts every discovery message a Home Assistant client saw passes the validator. */
function expectAllValid(seen: Seen): void {
  const discovery = seen.filter((m) => m.topic.startsWith('homeassistant/device/'));
  for (const m of discovery)
    expect([m.topic, validateDiscoveryMessage(m.topic, m.payload).issues]).toEqual([m.topic, []]);
}

const discoveryOf = (seen: Seen) => seen.filter((m) => m.topic === DISCOVERY && m.payload.length > 0);
const cmpsOf = (m: { payload: Buffer } | undefined) =>
  (JSON.parse(m?.payload.toString() ?? '{}') as { cmps: Record<string, Record<string, unknown>> }).cmps;

describe('Home Assistant discovery against Mosquitto (shipped config, device ACL)', () => {
  let perch: PerchBroker;
  let admin: MqttClient;
  let agent: MqttClient;
  let publisher: HomeAssistantPublisher;
  const others: MqttClient[] = [];
  let connects = 0;

  /** A Home Assistant-like client: reads discovery and Perch topics, publishes the birth message. */
  const homeAssistant = async () => {
    const c = await connect5(perch.broker.url, { username: 'homeassistant', password: 'pw-ha' });
    others.push(c);
    const seen = recorder(c);
    await subackCodes(c, ['homeassistant/device/+/config', topics.subtree(DEVICE)]);
    return { client: c, seen };
  };

  beforeAll(async () => {
    // No persistence: a broker restart loses every retained message, as after a crash.
    perch = await startPerchBroker({ persistence: false });
    admin = await connect5(perch.broker.url, {
      username: perch.admin.username,
      password: perch.admin.password,
    });
    const dynsec = new DynsecClient({ client: admin, logger });
    await dynsec.start();
    await dynsec.provisionDevice({ deviceId: DEVICE, password: 'pw-cam', clientId: DEVICE });
    await dynsec.ensureRole('homeassistant', [
      { acltype: 'subscribePattern', topic: 'homeassistant/#', allow: true, priority: 0 },
      { acltype: 'subscribePattern', topic: 'perch/v1/devices/#', allow: true, priority: 0 },
      { acltype: 'publishClientSend', topic: 'homeassistant/status', allow: true, priority: 0 },
    ]);
    await dynsec.createClient({ username: 'homeassistant', password: 'pw-ha', roles: ['homeassistant'] });
    dynsec.stop();
    await admin.endAsync();

    // The agent's own session: the device client, reconnecting by itself.
    agent = mqtt.connect(perch.broker.url, {
      protocolVersion: 5,
      username: DEVICE,
      password: 'pw-cam',
      clientId: DEVICE,
      reconnectPeriod: 200,
      clean: true,
    });
    agent.on('connect', () => connects++);
    await waitFor(() => connects > 0, { what: 'agent connect' });
    publisher = new HomeAssistantPublisher({
      link: mqttClientLink(agent),
      device: { deviceId: DEVICE, swVersion: '0.1.0' },
      logger,
      birthJitterMs: 0,
      store: new MemoryHaStateStore(),
    });
  });

  afterAll(async () => {
    publisher?.stop();
    await endAll([agent, ...others]);
    await perch?.close();
  });

  it('publishes a retained, valid discovery on start', async () => {
    await publisher.start(pipelines);
    const ha = await homeAssistant();
    const first = await waitFor(() => discoveryOf(ha.seen)[0], { what: 'retained discovery' });
    expect(first.retain).toBe(true);
    expect(Object.keys(cmpsOf(first))).toEqual(
      expect.arrayContaining(['front-door_person_detected', 'yard_cat_count']),
    );
    expectAllValid(ha.seen);
  });

  it('publishes entity states inside the device subtree, accepted by the device ACL', async () => {
    const ha = await homeAssistant();
    await publisher.applyEvent({
      v: 1,
      id: 'msg-00000001',
      ts: Date.UTC(2026, 0, 1),
      eventId: 'evt-00000001',
      phase: 'start',
      pipeline: 'front-door',
      label: 'person',
      score: 0.9,
    });
    await publisher.setFps('front-door', 9.5);
    await publisher.setCpuTemperature(51.25);
    await publisher.setSnapshot('front-door', Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
    const state = (t: string) => ha.seen.find((m) => m.topic === t)?.payload;
    await waitFor(() => state(`perch/v1/devices/${DEVICE}/ha/front-door/snapshot`), { what: 'snapshot' });
    expect(state(`perch/v1/devices/${DEVICE}/ha/front-door/person/detected`)?.toString()).toBe('ON');
    expect(state(`perch/v1/devices/${DEVICE}/ha/front-door/person/count`)?.toString()).toBe('1');
    expect(state(`perch/v1/devices/${DEVICE}/ha/fps`)).toBeUndefined();
    expect(state(`perch/v1/devices/${DEVICE}/ha/front-door/fps`)?.toString()).toBe('9.50');
    expect(state(`perch/v1/devices/${DEVICE}/ha/cpu_temperature`)?.toString()).toBe('51.3');
    expect(JSON.parse(state(`perch/v1/devices/${DEVICE}/ha/last_event`)?.toString() ?? '{}')).toMatchObject({
      label: 'person',
      pipeline: 'front-door',
    });
    expect(publisher.stats().publishErrors).toBe(0);
  });

  it("re-publishes when Home Assistant's birth message says online", async () => {
    const ha = await homeAssistant();
    await waitFor(() => discoveryOf(ha.seen)[0], { what: 'retained discovery' });
    const before = discoveryOf(ha.seen).length;
    expect(await pubackCode(ha.client, 'homeassistant/status', 'online')).toBe(0);
    await waitFor(() => discoveryOf(ha.seen).length > before, { what: 'discovery after birth' });
    expect(discoveryOf(ha.seen).at(-1)?.retain).toBe(false); // a live copy, re-sent because of the birth message
    expectAllValid(ha.seen);
  });

  it('re-publishes discovery and the last states after a broker restart lost them', async () => {
    const connectsBefore = connects;
    const publishedBefore = publisher.stats().discoveryPublished;
    await perch.broker.restart();
    await waitFor(() => connects > connectsBefore, { what: 'agent reconnect' });
    await waitFor(() => publisher.stats().discoveryPublished > publishedBefore, { what: 're-publication' });
    const ha = await homeAssistant();
    await waitFor(() => discoveryOf(ha.seen)[0], { what: 'retained discovery after restart' });
    await waitFor(
      () => ha.seen.find((m) => m.topic === `perch/v1/devices/${DEVICE}/ha/front-door/person/detected`),
      { what: 'retained state after restart' },
    );
    expectAllValid(ha.seen);
  });

  it('removes the components of a pipeline that went away', async () => {
    const ha = await homeAssistant();
    await waitFor(() => discoveryOf(ha.seen)[0], { what: 'retained discovery' });
    const before = discoveryOf(ha.seen).length;
    await publisher.setPipelines([pipelines[0] as HaPipeline]);
    await waitFor(() => discoveryOf(ha.seen).length > before, { what: 'updated discovery' });
    const cmps = cmpsOf(discoveryOf(ha.seen).at(-1));
    expect(cmps['yard_cat_detected']).toEqual({ p: 'binary_sensor' });
    expect(cmps['yard_cat_count']).toEqual({ p: 'sensor' });
    expect(cmps['yard_fps']).toEqual({ p: 'sensor' });
    expect(cmps['front-door_person_detected']).toMatchObject({
      uniq_id: `perch_${DEVICE}_front-door_person_detected`,
    });
    expectAllValid(ha.seen);
  });

  it('removes the whole device with an empty retained payload', async () => {
    await publisher.remove();
    // A retained marker subscribed after the discovery topic: once it arrives, a retained discovery would have.
    expect(await pubackCode(agent, `perch/v1/devices/${DEVICE}/ha/marker`, 'm', { retain: true })).toBe(0);
    const c = await connect5(perch.broker.url, { username: 'homeassistant', password: 'pw-ha' });
    others.push(c);
    const seen = recorder(c);
    await subackCodes(c, [DISCOVERY]);
    await subackCodes(c, [`perch/v1/devices/${DEVICE}/ha/#`]);
    await waitFor(() => seen.find((m) => m.topic.endsWith('/marker')), { what: 'marker' });
    expect(seen.filter((m) => m.topic === DISCOVERY)).toEqual([]);
    expect(seen.filter((m) => !m.topic.endsWith('/marker'))).toEqual([]); // retained states cleared too
    expect(publisher.stats().publishErrors).toBe(0);
  });
});
