import type { MqttClient } from 'mqtt';
import { createLogger, topics } from '@perch/shared';
import { DynsecClient } from '../../../controller/src/broker/dynsec';
import { startPerchBroker, type PerchBroker } from '../integrations/broker';
import { connect5, endAll, pubackCode, subackCodes } from '../integrations/mqtt-clients';
import { connectDevice, enroll, startHarness, type Enrolled, type Harness } from './harness';

jest.setTimeout(60_000);

const logger = createLogger({ namespace: 'test:acl-parity', silent: true });
const own = (rest: string) => `${topics.subtree('dev-a').replace(/#$/, '')}${rest}`;
const other = (rest: string) => `${topics.subtree('dev-b').replace(/#$/, '')}${rest}`;

/** Subscriptions of device dev-a and whether the device ACL grants them. */
const SUBSCRIBE: Array<[string, boolean]> = [
  [topics.desired('dev-a'), true],
  [topics.cmdAll('dev-a'), true],
  ['homeassistant/status', true],
  [own('cmd/report-now'), false],
  [own('cmd'), false],
  [own('cmd/#'), false],
  [topics.subtree('dev-a'), false],
  [own('telemetry'), false],
  [topics.desired('dev-b'), false],
  [topics.cmdAll('dev-b'), false],
  [topics.all('desired'), false],
  ['perch/#', false],
  ['#', false],
  ['homeassistant/#', false],
];

/** Publications of device dev-a and whether the device ACL allows them. */
const PUBLISH: Array<[string, boolean]> = [
  [own('telemetry'), true],
  [own('events'), true],
  [own('reported'), true],
  [own('cmd-result'), true],
  [own('ha/door/person/detected'), true],
  ['homeassistant/device/dev-a/config', true],
  [own('desired'), false],
  [own('cmd'), false],
  [own('cmd/report-now'), false],
  [other('telemetry'), false],
  ['homeassistant/device/dev-b/config', false],
  ['homeassistant/status', false],
  ['somewhere/else', false],
];

/**
 * The embedded broker (aedes, controller/src/mqtt/acl.ts) and Mosquitto with the device role of
 * controller/src/broker/dynsec-acl.ts must grant a device exactly the same: each real broker is asked
 * about the same list, and both must answer as the list says.
 */
describe('device ACL parity: embedded broker and Mosquitto dynamic security', () => {
  let h: Harness;
  let embedded: Enrolled;
  let perch: PerchBroker;
  let admin: MqttClient;
  let dynsec: DynsecClient;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    h = await startHarness({ mode: 'embedded' });
    embedded = await enroll(h, undefined, { name: 'dev-a' });
    expect(embedded.deviceId).toBe('dev-a');
    perch = await startPerchBroker({ persistence: false });
    admin = await connect5(perch.broker.url, {
      username: perch.admin.username,
      password: perch.admin.password,
      clientId: 'perch-admin-test',
    });
    dynsec = new DynsecClient({ client: admin, logger });
    await dynsec.start();
    await dynsec.provisionDevice({ deviceId: 'dev-a', password: 'pw-dev-a', clientId: 'dev-a' });
  });
  afterAll(async () => {
    dynsec?.stop();
    await endAll([admin, ...clients]);
    await perch?.close();
    await h?.close();
  });

  const mosquittoDevice = async () => {
    const c = await connect5(perch.broker.url, {
      username: 'dev-a',
      password: 'pw-dev-a',
      clientId: 'dev-a',
    });
    clients.push(c);
    return c;
  };

  /** A refused publish makes aedes (MQTT 3.1.1, no PUBACK reason codes) close the connection. */
  async function embeddedMayPublish(topic: string): Promise<boolean> {
    const c = await connectDevice(embedded);
    try {
      return await new Promise<boolean>((resolve) => {
        c.once('close', () => resolve(false));
        c.publish(topic, '{}', { qos: 1 }, (err) => resolve(!err));
      });
    } finally {
      c.end(true);
    }
  }

  it('grants and refuses the same subscriptions', async () => {
    const filters = SUBSCRIBE.map(([f]) => f);
    const expected = SUBSCRIBE.map(([f, ok]) => [f, ok]);
    const e = await connectDevice(embedded);
    clients.push(e);
    const viaEmbedded = await subackCodes(e, filters);
    const viaMosquitto = await subackCodes(await mosquittoDevice(), filters);
    expect(filters.map((f, i) => [f, viaEmbedded[i]! < 0x80])).toEqual(expected);
    expect(filters.map((f, i) => [f, viaMosquitto[i]! < 0x80])).toEqual(expected);
  });

  it('allows and refuses the same publications', async () => {
    const m = await mosquittoDevice();
    for (const [topic, ok] of PUBLISH) {
      expect([topic, (await pubackCode(m, topic, '{}')) === 0]).toEqual([topic, ok]);
      expect([topic, await embeddedMayPublish(topic)]).toEqual([topic, ok]);
    }
  });
});
