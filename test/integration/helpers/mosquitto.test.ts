import mqtt from 'mqtt';
import { TestMosquitto } from '../../helpers/mosquitto';

describe('TestMosquitto', () => {
  let broker: TestMosquitto;
  afterEach(async () => {
    await broker?.close();
  });

  it('refuses anonymous clients and accepts configured users', async () => {
    broker = await TestMosquitto.start({ users: { alice: 'secret' } });
    const anon = mqtt.connect(broker.url, { reconnectPeriod: 0, protocolVersion: 5 });
    const anonError = await new Promise<Error>((resolve) => anon.once('error', resolve));
    expect(anonError.message).toMatch(/Not authorized|Bad User Name or Password/i);
    anon.end(true);

    const alice = await mqtt.connectAsync(broker.url, {
      username: 'alice',
      password: 'secret',
      reconnectPeriod: 0,
    });
    expect(alice.connected).toBe(true);
    await alice.endAsync();
  });

  it('keeps retained messages across a restart', async () => {
    broker = await TestMosquitto.start({ allowAnonymous: true });
    const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await pub.publishAsync('t/retained', 'kept', { qos: 1, retain: true });
    await pub.endAsync();
    await broker.restart();
    const sub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    const got = new Promise<string>((resolve) => sub.on('message', (_t, p) => resolve(p.toString())));
    await sub.subscribeAsync('t/retained', { qos: 1 });
    expect(await got).toBe('kept');
    await sub.endAsync();
  });
});
