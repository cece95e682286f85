import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import { createLogger, ManualClock, topics } from '@perch/shared';
import { DynsecClient, DYNSEC_RESPONSE_TOPIC, DYNSEC_TOPIC } from '../../../src/broker/dynsec';
import { controllerRoleAcls, deviceRoleAcls, deviceRoleName } from '../../../src/broker/dynsec-acl';

const logger = createLogger({ namespace: 'test:dynsec', silent: true });

/** The seam: just enough of an mqtt.js client, recording what is published. */
class FakeClient extends EventEmitter {
  connected = true;
  published: Array<{ topic: string; payload: string }> = [];
  subscribeAsync = jest.fn(async () => [{ topic: DYNSEC_RESPONSE_TOPIC, qos: 1 }]);
  async publishAsync(topic: string, payload: string): Promise<void> {
    this.published.push({ topic, payload });
  }
  lastCommands(): Array<{ command: string; correlationData: string }> {
    const last = this.published.at(-1);
    return last ? (JSON.parse(last.payload) as { commands: [] }).commands : [];
  }
  answer(responses: unknown[]): void {
    this.emit('message', DYNSEC_RESPONSE_TOPIC, Buffer.from(JSON.stringify({ responses })));
  }
}

async function started(clock = new ManualClock()) {
  const fake = new FakeClient();
  const dynsec = new DynsecClient({ client: fake as unknown as MqttClient, logger, clock, timeoutMs: 5000 });
  await dynsec.start();
  return { fake, dynsec, clock };
}

describe('DynsecClient', () => {
  it('matches answers to requests by correlation id and ignores answers to others', async () => {
    const { fake, dynsec } = await started();
    const pending = dynsec.command({ command: 'getClient', username: 'dev-a' });
    await Promise.resolve();
    const [cmd] = fake.lastCommands();
    expect(fake.published[0]?.topic).toBe(DYNSEC_TOPIC);
    expect(cmd?.command).toBe('getClient');
    fake.answer([{ command: 'getClient', correlationData: 'someone-else', error: 'Client not found' }]);
    fake.answer([
      {
        command: 'getClient',
        correlationData: cmd?.correlationData,
        data: { client: { username: 'dev-a' } },
      },
    ]);
    await expect(pending).resolves.toEqual({ client: { username: 'dev-a' } });
  });

  it('fails with E_DYNSEC_TIMEOUT when the plugin does not answer', async () => {
    const { dynsec, clock } = await started();
    const pending = dynsec.command({ command: 'listClients' });
    const settled = pending.catch((e: unknown) => e);
    await clock.advance(5000);
    await expect(settled).resolves.toMatchObject({ code: 'E_DYNSEC_TIMEOUT' });
  });

  it('fails with E_DYNSEC_COMMAND carrying the plugin error', async () => {
    const { fake, dynsec } = await started();
    const pending = dynsec.command({ command: 'createClient', username: 'x' });
    await Promise.resolve();
    fake.answer([
      {
        command: 'createClient',
        correlationData: fake.lastCommands()[0]?.correlationData,
        error: 'Client already exists',
      },
    ]);
    await expect(pending).rejects.toMatchObject({
      code: 'E_DYNSEC_COMMAND',
      details: { command: 'createClient', error: 'Client already exists' },
    });
  });

  it('fails fast with E_DYNSEC_UNAVAILABLE while disconnected', async () => {
    const { fake, dynsec } = await started();
    fake.connected = false;
    await expect(dynsec.command({ command: 'listClients' })).rejects.toMatchObject({
      code: 'E_DYNSEC_UNAVAILABLE',
    });
    expect(fake.published).toEqual([]);
  });

  it('fails requests still waiting when stopped', async () => {
    const { dynsec } = await started();
    const pending = dynsec.command({ command: 'listClients' });
    await Promise.resolve();
    dynsec.stop();
    await expect(pending).rejects.toMatchObject({ code: 'E_DYNSEC_UNAVAILABLE' });
  });

  it('survives an unreadable response payload', async () => {
    const { fake } = await started();
    expect(() => fake.emit('message', DYNSEC_RESPONSE_TOPIC, Buffer.from('{"__proto__": {}}'))).not.toThrow();
    expect(() => fake.emit('message', DYNSEC_RESPONSE_TOPIC, Buffer.from('not json'))).not.toThrow();
  });
});

describe('dynamic-security ACLs', () => {
  it('denies desired and cmd at a higher priority than the allow of the own subtree', () => {
    const acls = deviceRoleAcls('dev-a');
    const subtreeAllow = acls.find((a) => a.topic === topics.subtree('dev-a'));
    const denials = acls.filter((a) => !a.allow);
    expect(denials.map((a) => a.topic).sort()).toEqual(
      ['perch/v1/devices/dev-a/cmd/#', topics.desired('dev-a')].sort(),
    );
    for (const d of denials) expect(d.priority).toBeGreaterThan(subtreeAllow?.priority ?? Infinity);
  });

  it('lets a device subscribe literally to its own desired, cmd/+ and the HA birth topic only', () => {
    const subs = deviceRoleAcls('dev-a', { homeAssistantPrefix: 'ha' }).filter((a) =>
      a.acltype.startsWith('subscribe'),
    );
    expect(subs.every((a) => a.acltype === 'subscribeLiteral' && a.allow)).toBe(true);
    expect(subs.map((a) => a.topic)).toEqual([topics.desired('dev-a'), topics.cmdAll('dev-a'), 'ha/status']);
  });

  it('leaves Home Assistant out when discovery is off, and honours the topic prefix', () => {
    const acls = deviceRoleAcls('dev-a', { prefix: 'site1', homeAssistantPrefix: false });
    expect(acls.some((a) => a.topic.includes('homeassistant') || a.topic.includes('status'))).toBe(false);
    expect(acls.every((a) => a.topic.startsWith('site1/v1/devices/dev-a/'))).toBe(true);
  });

  it('refuses ids that are not valid device ids', () => {
    expect(() => deviceRoleAcls('A/#')).toThrow(/device id/);
    expect(() => deviceRoleName('+')).toThrow(/device id/);
    expect(() => deviceRoleAcls('dev-a', { homeAssistantPrefix: 'ha/#' })).toThrow(/prefix/);
  });

  it('gives the controller desired and cmd for every device, and reading through $share', () => {
    const acls = controllerRoleAcls();
    const send = acls.filter((a) => a.acltype === 'publishClientSend').map((a) => a.topic);
    expect(send).toEqual(
      expect.arrayContaining([
        'perch/v1/devices/+/desired',
        'perch/v1/devices/+/cmd/+',
        'homeassistant/device/+/config',
      ]),
    );
    expect(acls.map((a) => a.topic)).toContain('$share/+/perch/v1/devices/#');
  });
});
