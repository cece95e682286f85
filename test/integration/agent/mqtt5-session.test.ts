import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { topics, type CommandMessage, type CommandResultMessage } from '@perch/shared';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { MqttRecordingProxy } from '../../helpers/mqtt-recording-proxy';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { connect5, endAll, recorder, subackCodes } from '../integrations/mqtt-clients';
import { createEnrollToken, silentLogger, startHarness, type Harness } from '../controller/harness';

jest.setTimeout(120_000);

// Long enough that the quick reconnect below lands inside it even on a loaded 2-core machine.
const WILL_DELAY_S = 12;
const SESSION_EXPIRY_S = 600;

/**
 * Acceptance 4 of issue 7: an agent on Mosquitto speaks MQTT 5 with a session expiry (queued QoS 1
 * commands survive its absence), a will delay (a quick reconnect does not flap its status) and
 * message expiry on commands (the broker drops an expired one; the agent refuses one whose own
 * expiry passed). The agent reaches Mosquitto through a proxy that decodes every packet, so the
 * properties are checked as they are on the wire.
 */
describe('agent MQTT 5 session against Mosquitto', () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  let proxy: MqttRecordingProxy;
  let agent: Agent;
  let operator: MqttClient;
  const seen: Array<{ topic: string; payload: Buffer; retain: boolean; at: number }> = [];
  let deviceId = '';

  const results = () =>
    seen
      .filter((m) => m.topic === topics.cmdResult(deviceId))
      .map((m) => JSON.parse(m.payload.toString()) as CommandResultMessage);
  const resultOf = (cmdId: string) => results().find((r) => r.cmdId === cmdId);
  const statuses = () =>
    seen
      .filter((m) => m.topic === topics.status(deviceId))
      .map((m) => ({
        ...(JSON.parse(m.payload.toString()) as { state: string; reason?: string }),
        at: m.at,
      }));

  /** Publishes a command as the controller does: QoS 1 with an MQTT 5 message expiry and its own expiry. */
  const sendCommand = async (
    name: string,
    opts: { messageExpiryS: number; expiresAt?: number },
  ): Promise<CommandMessage> => {
    const cmd: CommandMessage = {
      v: 1,
      id: `cmd-${randomUUID()}`,
      ts: Date.now(),
      expiresAt: opts.expiresAt ?? Date.now() + 60_000,
    };
    await operator.publishAsync(topics.cmd(deviceId, name), JSON.stringify(cmd), {
      qos: 1,
      properties: { messageExpiryInterval: opts.messageExpiryS },
    });
    return cmd;
  };
  /** Command PUBLISHes the broker delivered to the agent, by command id. */
  const deliveredCommand = (id: string) =>
    proxy
      .of('down', 'publish')
      .find((p) => p.packet.topic.includes('/cmd/') && p.packet.payload.toString().includes(id));

  const goOffline = async () => {
    proxy.refuse(true);
    proxy.cut();
    await waitFor(() => !agent.session!.connected, { what: 'agent offline' });
  };
  const goOnline = async () => {
    const connects = agent.session!.connectCount();
    proxy.refuse(false);
    await waitFor(() => agent.session!.connectCount() > connects && agent.session!.connected, {
      what: 'agent reconnect',
    });
  };

  beforeAll(async () => {
    h = await startHarness({ mode: 'mosquitto' });
    tmp = tempDir('perch-mqtt5-');
    const admin = await connect5(h.mosquitto!.url, h.perch!.admin);
    const dynsec = new DynsecClient({ client: admin, logger: silentLogger });
    await dynsec.start();
    await dynsec.ensureRole('operator', [
      { acltype: 'publishClientSend', topic: 'perch/v1/devices/+/cmd/+', allow: true, priority: 0 },
      { acltype: 'subscribePattern', topic: 'perch/v1/devices/#', allow: true, priority: 0 },
      { acltype: 'publishClientReceive', topic: 'perch/v1/devices/#', allow: true, priority: 0 },
    ]);
    await dynsec.createClient({ username: 'operator', password: 'operator-secret-1', roles: ['operator'] });
    dynsec.stop();
    await admin.endAsync();

    proxy = await MqttRecordingProxy.start({ host: '127.0.0.1', port: h.mosquitto!.port });
    agent = new Agent(
      agentConfigSchema.parse({
        stateDir: tmp.dir,
        controllerUrl: h.ctl.url,
        enrollToken: await createEnrollToken(h),
        telemetry: { intervalS: 3600 },
        mqtt: {
          reconnectBaseMs: 100,
          reconnectCapMs: 500,
          sessionExpiryS: SESSION_EXPIRY_S,
          willDelayS: WILL_DELAY_S,
        },
        homeAssistant: { enabled: false },
      }),
      {
        logger: silentLogger,
        env: {},
        // The enrolled broker URL is Mosquitto's; go through the recording proxy instead.
        mqttConnect: (_url, options) => mqtt.connect(proxy.url, options),
      },
    );
    await agent.start();
    deviceId = agent.credentials!.deviceId;
    await waitFor(() => agent.session?.connected, { what: 'agent connect' });

    operator = await connect5(h.mosquitto!.url, { username: 'operator', password: 'operator-secret-1' });
    operator.on('message', (topic, payload, packet) =>
      seen.push({ topic, payload, retain: packet.retain, at: Date.now() }),
    );
    expect(await subackCodes(operator, [topics.cmdResult(deviceId), topics.status(deviceId)])).toEqual([
      1, 1,
    ]);
  });

  afterAll(async () => {
    await agent?.stop();
    await endAll([operator]);
    await proxy?.close();
    await h?.close();
    tmp?.cleanup();
  });

  it('connects with MQTT 5: a session expiry, a persistent session and a delayed retained offline will', () => {
    const [connect] = proxy.of('up', 'connect');
    expect(connect?.packet).toMatchObject({
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: SESSION_EXPIRY_S },
      will: {
        topic: topics.status(deviceId),
        qos: 1,
        retain: true,
        properties: { willDelayInterval: WILL_DELAY_S },
      },
    });
    expect(JSON.parse(connect!.packet.will!.payload.toString())).toMatchObject({ state: 'offline' });
  });

  it('keeps the session while the agent is away: a QoS 1 command sent meanwhile is delivered and runs once', async () => {
    await goOffline();
    const ran = agent.counters.snapshot()['commands.report-now'] ?? 0;
    const cmd = await sendCommand('report-now', { messageExpiryS: 3600 });
    await goOnline();
    const result = await waitFor(() => resultOf(cmd.id), { what: 'result of the queued command' });
    expect(result).toMatchObject({ ok: true, name: 'report-now' });
    expect(agent.counters.snapshot()['commands.report-now']).toBe(ran + 1);
    // The broker kept the session: CONNACK says so, and the queued PUBLISH came with its remaining expiry.
    expect(proxy.of('down', 'connack').at(-1)?.packet.sessionPresent).toBe(true);
    const delivered = deliveredCommand(cmd.id)!.packet;
    expect(delivered.qos).toBe(1);
    expect(delivered.properties?.messageExpiryInterval).toBeGreaterThan(0);
    expect(delivered.properties?.messageExpiryInterval).toBeLessThanOrEqual(3600);
    expect(results().filter((r) => r.cmdId === cmd.id)).toHaveLength(1);
  });

  it('lets the broker drop a command whose MQTT message expiry passed while the agent was away', async () => {
    await goOffline();
    const expired = await sendCommand('report-now', { messageExpiryS: 1 });
    const marker = await sendCommand('report-now', { messageExpiryS: 3600 });
    // The expiry is the behaviour under test: wait until the broker must have discarded it
    // (Mosquitto counts whole seconds).
    await waitFor(() => Date.now() >= expired.ts + 2500, { what: 'message expiry to pass' });
    await goOnline();
    // Queued after the expired one: once it is here, the expired one would have been delivered before it.
    await waitFor(() => resultOf(marker.id), { what: 'result of the later command' });
    expect(deliveredCommand(marker.id)).toBeDefined();
    expect(deliveredCommand(expired.id)).toBeUndefined();
    expect(resultOf(expired.id)).toBeUndefined();
  });

  it('refuses a delivered command whose own expiry passed, and reports it expired', async () => {
    const ran = agent.counters.snapshot()['commands.report-now'] ?? 0;
    const expiredErrors = agent.counters.snapshot()['errors.e_cmd_expired'] ?? 0;
    // The broker still delivers it (its message expiry is long): the agent's own check must refuse it.
    const cmd = await sendCommand('report-now', { messageExpiryS: 3600, expiresAt: Date.now() - 1000 });
    const result = await waitFor(() => resultOf(cmd.id), { what: 'result of the expired command' });
    expect(deliveredCommand(cmd.id)).toBeDefined();
    expect(result).toMatchObject({ ok: false, error: { code: 'E_CMD_EXPIRED' } });
    expect(agent.counters.snapshot()['commands.report-now'] ?? 0).toBe(ran);
    expect(agent.counters.snapshot()['errors.e_cmd_expired']).toBe(expiredErrors + 1);
  });

  it('sends no offline on a reconnect within the will delay, and the retained offline only after it', async () => {
    const from = seen.length;
    const offline = () => statuses().filter((s) => s.state === 'offline');
    const offlineBefore = offline().length;
    // 1. The connection drops and the agent is back within the delay: the broker cancels the will.
    const cut1 = Date.now();
    const connects = agent.session!.connectCount();
    proxy.cut();
    await waitFor(() => agent.session!.connectCount() > connects && agent.session!.connected, {
      what: 'quick reconnect',
    });
    expect(Date.now() - cut1).toBeLessThan(WILL_DELAY_S * 1000); // else this step shows nothing
    // 2. Later, at least 2.5 s after the first drop, the connection drops for good. Had the first will
    // been kept, it would arrive by cut1 + delay + 1 s (whole seconds), before the second could
    // (not before cut2 + delay - 1 s).
    await waitFor(() => Date.now() >= cut1 + 2500, { what: 'spacing between the drops' });
    proxy.refuse(true);
    const cut2 = Date.now();
    proxy.cut();
    const first = await waitFor(() => offline()[offlineBefore], { what: 'offline will' });
    expect(first.reason).toBe('connection lost');
    // Not before the delay (Mosquitto may round a started second down), so it is the second drop's will.
    expect(first.at - cut2).toBeGreaterThanOrEqual((WILL_DELAY_S - 1) * 1000);
    // Since the first drop: the agent's own online after the reconnect, then the one will.
    expect(
      seen
        .slice(from)
        .filter((m) => m.topic === topics.status(deviceId))
        .map((m) => (JSON.parse(m.payload.toString()) as { state: string }).state),
    ).toEqual(['online', 'offline']);
    // Retained: a client subscribing now still learns that the device is offline.
    const late = await connect5(h.mosquitto!.url, { username: 'operator', password: 'operator-secret-1' });
    const lateSeen = recorder(late);
    await subackCodes(late, [topics.status(deviceId)]);
    const retained = await waitFor(() => lateSeen[0], { what: 'retained status' });
    await late.endAsync();
    expect(retained.retain).toBe(true);
    expect(JSON.parse(retained.payload.toString())).toMatchObject({ state: 'offline' });
    await goOnline();
  });
});
