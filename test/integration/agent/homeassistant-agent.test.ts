import fs from 'node:fs';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import sharp from 'sharp';
import type { EventMessage } from '@perch/shared';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { NoopPipelineHost, type PipelineHostDeps } from '../../../agent/src/core/pipelines-port';
import type { PipelineStats } from '../../../agent/src/pipeline/types';
import { validateDiscoveryMessage } from '../../../agent/src/integrations/homeassistant';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { connect5, endAll, pubackCode, recorder, subackCodes } from '../integrations/mqtt-clients';
import { api, createEnrollToken, silentLogger, startHarness, type Harness } from '../controller/harness';

jest.setTimeout(120_000);

type Seen = ReturnType<typeof recorder>;
type Cmps = Record<string, Record<string, unknown>>;

const latency = (p50: number) => ({ p50, p95: p50, p99: p50, count: 10 });

/**
 * The pipeline host seam: runs nothing, but hands the test the agent's event sink and reports the
 * statistics the test sets, as the real host would for running pipelines.
 */
class ScriptedHost extends NoopPipelineHost {
  fps = 12.5;
  constructor(readonly deps: PipelineHostDeps) {
    super();
  }
  override stats(): readonly PipelineStats[] {
    return this.lastApplied().pipelines.map((p) => ({
      id: p.id,
      state: 'running',
      received: 10,
      processed: 10,
      dropped: 0,
      fps: this.fps,
      latency: {
        queue: latency(1),
        preprocess: latency(2),
        infer: latency(23.456),
        postprocess: latency(1),
        rules: latency(1),
        total: latency(30),
      },
      detections: 0,
      events: 0,
      snapshots: 0,
      errors: {},
    }));
  }
}

describe('agent announces itself to Home Assistant (Mosquitto with dynamic security, real controller)', () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  let agent: Agent | undefined;
  let host: ScriptedHost | undefined;
  let deviceId = '';
  const clients: MqttClient[] = [];
  /** Every discovery message any Home Assistant client saw, for the validator. */
  const allDiscovery: Seen = [];

  const brokerUrl = () => h.mosquitto!.url;
  const discoveryTopic = () => `homeassistant/device/${deviceId}/config`;
  const haTopic = (rest: string) => `perch/v1/devices/${deviceId}/ha/${rest}`;

  /** A Home Assistant-like client: reads discovery and the device's topics, may send the birth message. */
  const homeAssistant = async () => {
    const client = await connect5(brokerUrl(), { username: 'homeassistant', password: 'ha-secret-1' });
    clients.push(client);
    const seen = recorder(client);
    client.on('message', (topic, payload, packet) => {
      if (topic.startsWith('homeassistant/device/'))
        allDiscovery.push({ topic, payload, retain: packet.retain });
    });
    expect(await subackCodes(client, ['homeassistant/device/+/config', 'perch/v1/devices/#'])).toEqual([
      1, 1,
    ]);
    return { client, seen };
  };
  const discoveries = (seen: Seen) =>
    seen.filter((m) => m.topic === discoveryTopic() && m.payload.length > 0);
  const cmpsOf = (m: { payload: Buffer } | undefined): Cmps =>
    (JSON.parse(m?.payload.toString() ?? '{}') as { cmps?: Cmps }).cmps ?? {};
  const state = (seen: Seen, rest: string) => seen.filter((m) => m.topic === haTopic(rest)).at(-1)?.payload;

  const thermal = () => path.join(tmp.dir, 'thermal');
  const config = (token?: string) =>
    agentConfigSchema.parse({
      stateDir: path.join(tmp.dir, 'agent'),
      controllerUrl: h.ctl.url,
      ...(token ? { enrollToken: token } : {}),
      telemetry: { intervalS: 3600 },
      mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
      homeAssistant: { stateIntervalS: 1 },
    });
  const startAgent = async (token?: string) => {
    const a = new Agent(config(token), {
      logger: silentLogger,
      env: {},
      paths: { thermalDir: thermal() },
      pipelineHost: (deps) => (host = new ScriptedHost(deps)),
    });
    await a.start();
    agent = a;
    return a;
  };
  const putDesired = async (pipelines: unknown[]) => {
    const res = await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
      models: [],
      pipelines,
    });
    expect(res.status).toBe(200);
  };
  const door = {
    id: 'front-door',
    model: 'detector',
    source: { kind: 'lavfi', graph: 'testsrc' },
    rules: { labels: ['person', 'car'] },
  };
  const mic = {
    id: 'mic',
    model: 'vad',
    source: { kind: 'audio' },
    rules: { labels: ['speech'] },
  };

  beforeAll(async () => {
    h = await startHarness({ mode: 'mosquitto' });
    tmp = tempDir('perch-ha-agent-');
    fs.mkdirSync(path.join(thermal(), 'thermal_zone0'), { recursive: true });
    fs.writeFileSync(path.join(thermal(), 'thermal_zone0', 'temp'), '48500\n');
    const admin = await connect5(brokerUrl(), h.perch!.admin);
    const dynsec = new DynsecClient({ client: admin, logger: silentLogger });
    await dynsec.start();
    await dynsec.ensureRole('homeassistant', [
      { acltype: 'subscribePattern', topic: 'homeassistant/#', allow: true, priority: 0 },
      { acltype: 'subscribePattern', topic: 'perch/v1/devices/#', allow: true, priority: 0 },
      { acltype: 'publishClientReceive', topic: '#', allow: true, priority: 0 },
      { acltype: 'publishClientSend', topic: 'homeassistant/status', allow: true, priority: 0 },
    ]);
    await dynsec.createClient({
      username: 'homeassistant',
      password: 'ha-secret-1',
      roles: ['homeassistant'],
    });
    dynsec.stop();
    await admin.endAsync();
  });

  afterAll(async () => {
    await agent?.stop();
    await endAll(clients);
    await h?.close();
    tmp?.cleanup();
  });

  afterEach(() => {
    // Every discovery payload Home Assistant received obeys its documented rules (empty = removal).
    for (const m of allDiscovery)
      expect([m.topic, validateDiscoveryMessage(m.topic, m.payload).issues]).toEqual([m.topic, []]);
  });

  it('publishes a retained discovery on start, over MQTT 5, without a refused publish', async () => {
    const a = await startAgent(await createEnrollToken(h));
    deviceId = a.credentials!.deviceId;
    await waitFor(() => a.session?.connected, { what: 'mqtt connect' });
    expect(a.session?.protocol).toBe(5);
    const ha = await homeAssistant();
    const first = await waitFor(() => discoveries(ha.seen)[0], { what: 'retained discovery' });
    expect(first.retain).toBe(true);
    const doc = JSON.parse(first.payload.toString()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      dev: { ids: [`perch_${deviceId}`], sw: '0.1.0' },
      o: { name: 'Perch' },
      avty: [{ topic: `perch/v1/devices/${deviceId}/status`, value_template: '{{ value_json.state }}' }],
    });
    // No desired state yet: the device-wide entities only.
    expect(Object.keys(cmpsOf(first)).sort()).toEqual(['cpu_temperature', 'last_event']);
    await waitFor(() => state(ha.seen, 'cpu_temperature'), { what: 'cpu temperature' });
    expect(state(ha.seen, 'cpu_temperature')?.toString()).toBe('48.5');
    expect(a.homeAssistant!.publisher.stats().publishErrors).toBe(0);
  });

  it('announces the pipelines of the desired state, per label a binary sensor and a count', async () => {
    const ha = await homeAssistant();
    await putDesired([door, mic]);
    const doc = await waitFor(() => discoveries(ha.seen).find((m) => 'mic_speech_detected' in cmpsOf(m)), {
      what: 'discovery with pipelines',
    });
    const cmps = cmpsOf(doc);
    expect(Object.keys(cmps).sort()).toEqual(
      [
        'cpu_temperature',
        'front-door_car_count',
        'front-door_car_detected',
        'front-door_fps',
        'front-door_latency',
        'front-door_person_count',
        'front-door_person_detected',
        'front-door_snapshot',
        'last_event',
        'mic_fps',
        'mic_latency',
        'mic_speech_count',
        'mic_speech_detected',
      ].sort(),
    );
    expect(cmps['front-door_person_detected']).toMatchObject({
      p: 'binary_sensor',
      uniq_id: `perch_${deviceId}_front-door_person_detected`,
      stat_t: haTopic('front-door/person/detected'),
    });
    expect(cmps['front-door_snapshot']).toMatchObject({ p: 'image', img_t: haTopic('front-door/snapshot') });
    await waitFor(() => state(ha.seen, 'front-door/fps'), { what: 'fps' });
    expect(state(ha.seen, 'front-door/fps')?.toString()).toBe('12.50');
    await waitFor(() => state(ha.seen, 'front-door/latency'), { what: 'latency' });
    expect(state(ha.seen, 'front-door/latency')?.toString()).toBe('23.46');
  });

  it('follows pipeline events: detected, count, last event and the snapshot image', async () => {
    const ha = await homeAssistant();
    const snapshots = agent!.paths.snapshotsDir;
    fs.mkdirSync(snapshots, { recursive: true });
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } })
      .jpeg()
      .toBuffer();
    fs.writeFileSync(path.join(snapshots, 'snap-0001.jpg'), jpeg);
    const ev = (phase: EventMessage['phase'], n: number): EventMessage => ({
      v: 1,
      id: `msg-${phase}-0000000${n}`,
      ts: Date.now(),
      eventId: 'evt-00000001',
      phase,
      pipeline: 'front-door',
      label: 'person',
      score: 0.9,
      ...(phase === 'start' ? { snapshot: 'snap-0001' } : {}),
    });
    await host!.deps.events.emit(ev('start', 1));
    await waitFor(() => state(ha.seen, 'front-door/snapshot'), { what: 'snapshot image' });
    expect(state(ha.seen, 'front-door/snapshot')?.equals(jpeg)).toBe(true);
    expect(state(ha.seen, 'front-door/person/detected')?.toString()).toBe('ON');
    expect(state(ha.seen, 'front-door/person/count')?.toString()).toBe('1');
    expect(JSON.parse(state(ha.seen, 'last_event')?.toString() ?? '{}')).toMatchObject({
      label: 'person',
      pipeline: 'front-door',
      snapshot: 'snap-0001',
    });
    await host!.deps.events.emit(ev('end', 2));
    await waitFor(() => state(ha.seen, 'front-door/person/detected')?.toString() === 'OFF', {
      what: 'detected off',
    });
    expect(state(ha.seen, 'front-door/person/count')?.toString()).toBe('0');
  });

  it("re-publishes when Home Assistant's birth message says online", async () => {
    const ha = await homeAssistant();
    await waitFor(() => discoveries(ha.seen)[0], { what: 'retained discovery' });
    const before = discoveries(ha.seen).length;
    expect(await pubackCode(ha.client, 'homeassistant/status', 'online')).toBe(0);
    const live = await waitFor(() => discoveries(ha.seen)[before], { what: 'discovery after birth' });
    // Not the retained copy a new subscriber gets: sent live because of the birth message.
    expect(live.retain).toBe(false);
    expect(Object.keys(cmpsOf(live))).toContain('front-door_person_detected');
  });

  it('re-publishes discovery and the last states after a broker restart lost every retained message', async () => {
    const a = agent!;
    const connects = a.session!.connectCount();
    const published = a.homeAssistant!.publisher.stats().discoveryPublished;
    await h.mosquitto!.restart(); // persistence off: nothing retained survives
    await waitFor(() => a.session!.connectCount() > connects && a.session!.connected, {
      what: 'agent reconnect',
    });
    await waitFor(() => a.homeAssistant!.publisher.stats().discoveryPublished > published, {
      what: 're-publication',
    });
    // Subscribed only now: what arrives was kept by the broker (states may still be on their way).
    const ha = await homeAssistant();
    const doc = await waitFor(() => discoveries(ha.seen)[0], { what: 'retained discovery after restart' });
    expect(doc.retain).toBe(true);
    expect(Object.keys(cmpsOf(doc))).toContain('mic_speech_detected');
    await waitFor(() => state(ha.seen, 'front-door/person/detected'), {
      what: 'retained state after restart',
    });
    expect(state(ha.seen, 'front-door/person/detected')?.toString()).toBe('OFF');
    expect(state(ha.seen, 'front-door/snapshot')?.length).toBeGreaterThan(0);
  });

  it('removes the components of a pipeline removed from the desired state', async () => {
    const ha = await homeAssistant();
    await putDesired([door]);
    const doc = await waitFor(
      () => discoveries(ha.seen).find((m) => cmpsOf(m)['mic_speech_detected']?.uniq_id === undefined),
      { what: 'discovery without mic' },
    );
    const cmps = cmpsOf(doc);
    expect(cmps['mic_speech_detected']).toEqual({ p: 'binary_sensor' });
    expect(cmps['mic_speech_count']).toEqual({ p: 'sensor' });
    expect(cmps['mic_fps']).toEqual({ p: 'sensor' });
    expect(cmps['mic_latency']).toEqual({ p: 'sensor' });
    expect(cmps['front-door_person_detected']).toMatchObject({
      uniq_id: `perch_${deviceId}_front-door_person_detected`,
    });
  });

  it('keeps the unique ids across a restart of the agent, without removing live components', async () => {
    await agent!.stop();
    agent = undefined;
    const ha = await homeAssistant();
    await waitFor(() => discoveries(ha.seen)[0], { what: 'retained discovery' });
    const before = discoveries(ha.seen).length;
    const again = await startAgent();
    expect(again.credentials!.deviceId).toBe(deviceId);
    const doc = await waitFor(() => discoveries(ha.seen)[before], { what: 'discovery after agent restart' });
    const cmps = cmpsOf(doc);
    for (const id of [
      'front-door_person_detected',
      'front-door_car_count',
      'front-door_snapshot',
      'cpu_temperature',
    ])
      expect([id, cmps[id]?.uniq_id]).toEqual([id, `perch_${deviceId}_${id}`]);
    expect(cmps['mic_speech_detected']).toEqual({ p: 'binary_sensor' });
    expect(again.homeAssistant!.publisher.stats().publishErrors).toBe(0);
  });
});

describe("agent Home Assistant discovery on the controller's embedded broker (MQTT 3.1.1)", () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  let agent: Agent | undefined;

  beforeAll(async () => {
    h = await startHarness({ mode: 'embedded' });
    tmp = tempDir('perch-ha-embedded-');
  });
  afterAll(async () => {
    await agent?.stop();
    await h?.close();
    tmp?.cleanup();
  });

  it('publishes discovery and states that the device ACL accepts, without losing the connection', async () => {
    const thermal = path.join(tmp.dir, 'thermal');
    fs.mkdirSync(path.join(thermal, 'thermal_zone0'), { recursive: true });
    fs.writeFileSync(path.join(thermal, 'thermal_zone0', 'temp'), '51000\n');
    agent = new Agent(
      agentConfigSchema.parse({
        stateDir: path.join(tmp.dir, 'agent'),
        controllerUrl: h.ctl.url,
        enrollToken: await createEnrollToken(h),
        telemetry: { intervalS: 3600 },
        mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
        homeAssistant: { stateIntervalS: 1 },
      }),
      { logger: silentLogger, env: {}, paths: { thermalDir: thermal } },
    );
    await agent.start();
    const a = agent;
    await waitFor(() => a.session?.connected, { what: 'mqtt connect' });
    const res = await api(h, 'PUT', `/api/v1/devices/${a.credentials!.deviceId}/desired`, h.adminToken, {
      models: [],
      pipelines: [{ id: 'yard', model: 'detector', source: { kind: 'lavfi' }, rules: { labels: ['cat'] } }],
    });
    expect(res.status).toBe(200);
    // A QoS 1 publish counts once acknowledged; aedes closes the connection on a refused one instead.
    await waitFor(() => a.homeAssistant!.publisher.stats().discoveryPublished >= 2, { what: 'discovery' });
    await waitFor(() => a.homeAssistant!.publisher.stats().statesPublished >= 1, { what: 'a state' });
    expect(a.session!.protocol).toBe(4);
    expect(a.session!.connectCount()).toBe(1);
    expect(a.session!.connected).toBe(true);
    expect(a.homeAssistant!.publisher.stats()).toMatchObject({ publishErrors: 0, invalidPayloads: 0 });
  });
});
