import type { MqttClient } from 'mqtt';
import { createLogger, PerchError, topics } from '@perch/shared';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import { homeAssistantDiscoveryTopic } from '../../../controller/src/broker/dynsec-acl';
import { waitFor } from '../../helpers/wait';
import { startPerchBroker, type PerchBroker } from './broker';
import { connect5, connectRefusal, endAll, pubackCode, recorder, subackCodes } from './mqtt-clients';

const NOT_AUTHORIZED = 0x87;

const logger = createLogger({ namespace: 'test:dynsec', silent: true });

describe('Mosquitto from the shipped config, driven through the dynamic-security client', () => {
  let perch: PerchBroker;
  let admin: MqttClient;
  let dynsec: DynsecClient;
  let controller: MqttClient;
  const clients: MqttClient[] = [];

  const device = async (id: string, password = `pw-${id}`) => {
    const c = await connect5(perch.broker.url, { username: id, password, clientId: id });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    perch = await startPerchBroker();
    admin = await connect5(perch.broker.url, {
      username: perch.admin.username,
      password: perch.admin.password,
      clientId: 'perch-admin-test',
    });
    dynsec = new DynsecClient({ client: admin, logger });
    await dynsec.start();
    const role = await dynsec.ensureControllerRole();
    await dynsec.createClient({ username: 'perch-controller', password: 'pw-controller', roles: [role] });
    await dynsec.provisionDevice({ deviceId: 'dev-a', password: 'pw-dev-a', clientId: 'dev-a' });
    await dynsec.provisionDevice({ deviceId: 'dev-b', password: 'pw-dev-b', clientId: 'dev-b' });
    controller = await connect5(perch.broker.url, {
      username: 'perch-controller',
      password: 'pw-controller',
      clientId: 'perch-controller-test',
    });
  });

  afterAll(async () => {
    dynsec?.stop();
    await endAll([admin, controller, ...clients]);
    await perch?.close();
  });

  // Mosquitto 2.0's plugin answers a wrong password with 0x87 too, not 0x86 (bad user name or password).
  it('refuses anonymous clients and wrong passwords with CONNACK 0x87', async () => {
    expect(await connectRefusal(perch.broker.url)).toBe(NOT_AUTHORIZED);
    expect(await connectRefusal(perch.broker.url, { username: 'dev-a', password: 'wrong' })).toBe(
      NOT_AUTHORIZED,
    );
  });

  it("refuses a login with another client id than the device's pinned one", async () => {
    const code = await connectRefusal(perch.broker.url, {
      username: 'dev-a',
      password: 'pw-dev-a',
      clientId: 'dev-b',
    });
    expect(code).toBeGreaterThanOrEqual(0x80);
  });

  it('lets a device publish in its own subtree and the controller read it', async () => {
    const seen = recorder(controller);
    expect(await subackCodes(controller, [topics.all('telemetry')])).toEqual([1]);
    const a = await device('dev-a', 'pw-dev-a');
    expect(await pubackCode(a, topics.telemetry('dev-a'), 'hello')).toBe(0);
    expect(await pubackCode(a, `${topics.events('dev-a')}`, '{}')).toBe(0);
    await waitFor(() => seen.find((m) => m.topic === topics.telemetry('dev-a')), { what: 'telemetry' });
  });

  it("answers 0x87 when device A publishes into device B's subtree, and nothing is delivered", async () => {
    const seen = recorder(controller);
    expect(await subackCodes(controller, [topics.subtree('dev-b'), topics.subtree('dev-a')])).toEqual([1, 1]);
    const a = await device('dev-a', 'pw-dev-a');
    for (const topic of [
      topics.telemetry('dev-b'),
      topics.status('dev-b'),
      topics.reported('dev-b'),
      topics.events('dev-b'),
      topics.cmdResult('dev-b'),
    ]) {
      expect([topic, await pubackCode(a, topic, 'forged')]).toEqual([topic, NOT_AUTHORIZED]);
    }
    // A marker published after the refused messages: once it arrives, anything forged would have too.
    expect(await pubackCode(a, topics.telemetry('dev-a'), 'marker')).toBe(0);
    await waitFor(() => seen.find((m) => m.payload.toString() === 'marker'), { what: 'marker' });
    expect(seen.filter((m) => m.topic.includes('/dev-b/'))).toEqual([]);
  });

  it('answers 0x87 when a device publishes its own desired state or a command', async () => {
    const a = await device('dev-a', 'pw-dev-a');
    for (const topic of [
      topics.desired('dev-a'),
      topics.cmd('dev-a', 'report-now'),
      topics.cmd('dev-b', 'report-now'),
      topics.desired('dev-b'),
      'perch/v1/devices/dev-a/cmd',
      'somewhere/else',
    ]) {
      expect([topic, await pubackCode(a, topic, '{}')]).toEqual([topic, NOT_AUTHORIZED]);
    }
  });

  it('grants a device only its own desired and cmd subscriptions (SUBACK 0x87 for the rest)', async () => {
    const a = await device('dev-a', 'pw-dev-a');
    expect(await subackCodes(a, [topics.desired('dev-a'), topics.cmdAll('dev-a')])).toEqual([1, 1]);
    const forbidden = [
      topics.desired('dev-b'),
      topics.cmdAll('dev-b'),
      topics.telemetry('dev-b'),
      topics.subtree('dev-a'),
      topics.all('telemetry'),
      'perch/#',
      '#',
      '$share/g/perch/v1/devices/dev-b/desired',
    ];
    expect(await subackCodes(a, forbidden)).toEqual(forbidden.map(() => NOT_AUTHORIZED));
  });

  it("delivers the controller's retained desired state and commands to the device", async () => {
    expect(await pubackCode(controller, topics.desired('dev-a'), 'desired-a', { retain: true })).toBe(0);
    const a = await device('dev-a', 'pw-dev-a');
    const seen = recorder(a);
    await subackCodes(a, [topics.desired('dev-a'), topics.cmdAll('dev-a')]);
    expect(await pubackCode(controller, topics.cmd('dev-a', 'snapshot'), 'cmd-a')).toBe(0);
    await waitFor(() => seen.find((m) => m.payload.toString() === 'cmd-a'), { what: 'command' });
    expect(seen.map((m) => m.payload.toString()).sort()).toEqual(['cmd-a', 'desired-a']);
  });

  it('lets the controller read through a shared subscription', async () => {
    expect(await subackCodes(controller, [`$share/replicas/${topics.all('events')}`])).toEqual([1]);
  });

  it("lets a device publish only its own Home Assistant discovery and read HA's birth topic", async () => {
    const a = await device('dev-a', 'pw-dev-a');
    expect(await pubackCode(a, homeAssistantDiscoveryTopic('dev-a'), '{}')).toBe(0);
    expect(await pubackCode(a, homeAssistantDiscoveryTopic('dev-b'), '{}')).toBe(NOT_AUTHORIZED);
    expect(await pubackCode(a, 'homeassistant/status', 'online')).toBe(NOT_AUTHORIZED);
    expect(await subackCodes(a, ['homeassistant/status', 'homeassistant/#'])).toEqual([1, NOT_AUTHORIZED]);
    // Clean up the retained discovery for the other tests.
    expect(await pubackCode(a, homeAssistantDiscoveryTopic('dev-a'), '')).toBe(0);
  });

  it('disableClient kicks a live session and refuses the reconnect; enableClient restores it', async () => {
    await dynsec.provisionDevice({ deviceId: 'dev-c', password: 'pw-dev-c', clientId: 'dev-c' });
    const c = await device('dev-c', 'pw-dev-c');
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    expect(await dynsec.disableClient('dev-c')).toBe(true);
    await closed;
    expect(c.connected).toBe(false);
    const refusal = await connectRefusal(perch.broker.url, {
      username: 'dev-c',
      password: 'pw-dev-c',
      clientId: 'dev-c',
    });
    expect(refusal).toBe(NOT_AUTHORIZED);
    expect((await dynsec.getClient('dev-c'))?.disabled).toBe(true);
    await dynsec.enableClient('dev-c');
    const again = await device('dev-c', 'pw-dev-c');
    expect(again.connected).toBe(true);
  });

  it('re-provisioning a device replaces its password and keeps its role', async () => {
    await dynsec.provisionDevice({ deviceId: 'dev-d', password: 'old-pw', clientId: 'dev-d' });
    await dynsec.disableClient('dev-d');
    await dynsec.provisionDevice({ deviceId: 'dev-d', password: 'new-pw', clientId: 'dev-d' });
    expect(
      await connectRefusal(perch.broker.url, { username: 'dev-d', password: 'old-pw', clientId: 'dev-d' }),
    ).toBe(NOT_AUTHORIZED);
    const d = await device('dev-d', 'new-pw');
    expect(await pubackCode(d, topics.telemetry('dev-d'), 'x')).toBe(0);
    expect(await pubackCode(d, topics.desired('dev-d'), 'x')).toBe(NOT_AUTHORIZED);
    expect((await dynsec.getClient('dev-d'))?.roles?.map((r) => r.rolename)).toEqual(['perch-device-dev-d']);
  });

  it('ensureDeviceRole repairs a role whose ACLs were edited by hand', async () => {
    await dynsec.command({
      command: 'removeRoleACL',
      rolename: 'perch-device-dev-a',
      acltype: 'publishClientSend',
      topic: topics.desired('dev-a'),
    });
    await dynsec.command({
      command: 'addRoleACL',
      rolename: 'perch-device-dev-a',
      acltype: 'publishClientSend',
      topic: '#',
      allow: true,
      priority: 100,
    });
    await dynsec.ensureDeviceRole('dev-a');
    const a = await device('dev-a', 'pw-dev-a');
    expect(await pubackCode(a, topics.desired('dev-a'), 'x')).toBe(NOT_AUTHORIZED);
    expect(await pubackCode(a, 'somewhere/else', 'x')).toBe(NOT_AUTHORIZED);
  });

  it('deleteClient kicks the session and the username stops existing', async () => {
    await dynsec.provisionDevice({ deviceId: 'dev-e', password: 'pw-dev-e' });
    const e = await device('dev-e', 'pw-dev-e');
    const closed = new Promise<void>((resolve) => e.once('close', () => resolve()));
    await dynsec.deleteDevice('dev-e');
    await closed;
    expect(await dynsec.getClient('dev-e')).toBeUndefined();
    expect(await dynsec.deleteClient('dev-e')).toBe(false);
  });

  it('reports plugin refusals as E_DYNSEC_COMMAND', async () => {
    const err = await dynsec
      .createClient({ username: 'dev-a', password: 'again' })
      .catch((e: unknown) => e as PerchError);
    expect(err).toBeInstanceOf(PerchError);
    expect((err as PerchError).code).toBe('E_DYNSEC_COMMAND');
    expect((err as PerchError).message).toMatch(/already exists/);
  });

  it('refuses a non-admin client with E_DYNSEC_UNAVAILABLE', async () => {
    const other = new DynsecClient({ client: controller, logger });
    await expect(other.start()).rejects.toMatchObject({ code: 'E_DYNSEC_UNAVAILABLE' });
  });
});
