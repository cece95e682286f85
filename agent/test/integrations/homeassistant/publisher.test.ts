import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import { createLogger, ManualClock, type EventMessage } from '@perch/shared';
import {
  HomeAssistantPublisher,
  MemoryHaStateStore,
  mqttClientLink,
  validateDiscoveryMessage,
  type HaPipeline,
  type HomeAssistantPublisherOptions,
} from '../../../src/integrations/homeassistant';

const logger = createLogger({ namespace: 'test:ha', silent: true });
const DISCOVERY = 'homeassistant/device/dev-a/config';

/** The MQTT seam: records publishes; tests emit connect and message events. */
class FakeClient extends EventEmitter {
  published: Array<{ topic: string; payload: string; retain: boolean }> = [];
  fail = false;
  connected = true;
  subscribe(_t: string, _o: unknown, cb?: (err: Error | null) => void) {
    cb?.(null);
    return this;
  }
  async publishAsync(topic: string, payload: string | Buffer, opts: { retain?: boolean }) {
    if (this.fail) throw new Error('Publish error: Not authorized');
    this.published.push({ topic, payload: payload.toString(), retain: opts.retain ?? false });
  }
  discoveries() {
    return this.published.filter((p) => p.topic === DISCOVERY);
  }
}

function make(extra: Partial<HomeAssistantPublisherOptions> = {}) {
  const client = new FakeClient();
  const clock = new ManualClock();
  const publisher = new HomeAssistantPublisher({
    link: mqttClientLink(client as unknown as MqttClient),
    device: { deviceId: 'dev-a', swVersion: '1.0.0' },
    logger,
    clock,
    random: () => 0.5,
    birthJitterMs: 1000,
    ...extra,
  });
  return { client, clock, publisher };
}

const cam: HaPipeline = { id: 'cam', labels: ['person'] };
const event = (phase: EventMessage['phase'], eventId: string): EventMessage => ({
  v: 1,
  id: `msg-${eventId}-${phase}`,
  ts: 0,
  eventId,
  phase,
  pipeline: 'cam',
  label: 'person',
  score: 0.8,
});

describe('HomeAssistantPublisher', () => {
  it('publishes retained discovery that passes the validator on start', async () => {
    const { client, publisher } = make();
    await publisher.start([cam]);
    const [d] = client.discoveries();
    expect(d?.retain).toBe(true);
    expect(validateDiscoveryMessage(DISCOVERY, d?.payload ?? '').ok).toBe(true);
  });

  it('answers the birth message after its jitter, once for a burst of births', async () => {
    const { client, clock, publisher } = make();
    await publisher.start([cam]);
    client.emit('message', 'homeassistant/status', Buffer.from('online'));
    client.emit('message', 'homeassistant/status', Buffer.from('online'));
    client.emit('message', 'homeassistant/status', Buffer.from('offline'));
    expect(client.discoveries()).toHaveLength(1);
    await clock.advance(499);
    expect(client.discoveries()).toHaveLength(1);
    await clock.advance(1);
    expect(client.discoveries()).toHaveLength(2);
  });

  it('re-publishes discovery and states on every connect, with or without a session', async () => {
    const { client, publisher } = make();
    await publisher.start([cam]);
    await publisher.setCpuTemperature(40);
    expect(client.published).toHaveLength(2);
    client.emit('connect', { cmd: 'connack', sessionPresent: true });
    await new Promise((r) => setImmediate(r));
    client.emit('connect', { cmd: 'connack', sessionPresent: false });
    await new Promise((r) => setImmediate(r));
    expect(client.published.map((p) => p.topic)).toEqual([
      DISCOVERY,
      'perch/v1/devices/dev-a/ha/cpu_temperature',
      DISCOVERY,
      'perch/v1/devices/dev-a/ha/cpu_temperature',
      DISCOVERY,
      'perch/v1/devices/dev-a/ha/cpu_temperature',
    ]);
  });

  it('sends nothing while offline and everything current on the next connect', async () => {
    const { client, publisher } = make();
    client.connected = false;
    await publisher.start([cam]);
    await publisher.setFps('cam', 3);
    await publisher.setFps('cam', 4);
    expect(client.published).toEqual([]);
    expect(publisher.stats().publishErrors).toBe(0);
    client.connected = true;
    client.emit('connect', { cmd: 'connack', sessionPresent: true });
    await new Promise((r) => setImmediate(r));
    expect(client.published.map((p) => [p.topic, p.payload.length > 0 ? p.payload.slice(0, 4) : ''])).toEqual(
      [
        [DISCOVERY, '{"de'],
        ['perch/v1/devices/dev-a/ha/cam/fps', '4.00'],
      ],
    );
  });

  it('when disabled, clears an earlier run once it is connected, and only when one was announced', async () => {
    const store = new MemoryHaStateStore();
    const first = make({ store });
    await first.publisher.start([cam]);
    first.publisher.stop();
    const off = make({ store, enabled: false });
    off.client.connected = false;
    await off.publisher.start([cam]);
    expect(off.client.published).toEqual([]);
    off.client.connected = true;
    off.client.emit('connect', { cmd: 'connack', sessionPresent: true });
    await new Promise((r) => setImmediate(r));
    expect(off.client.published).toEqual([{ topic: DISCOVERY, payload: '', retain: true }]);
    const again = make({ store, enabled: false });
    await again.publisher.start([cam]);
    expect(again.client.published).toEqual([]);
  });

  it('tracks concurrent events of a label: detected while any is open, count of open ones', async () => {
    const { client, publisher } = make();
    await publisher.start([cam]);
    await publisher.applyEvent(event('start', 'evt-00000001'));
    await publisher.applyEvent(event('start', 'evt-00000002'));
    await publisher.applyEvent(event('end', 'evt-00000001'));
    await publisher.applyEvent(event('end', 'evt-00000002'));
    const values = (suffix: string) =>
      client.published.filter((p) => p.topic.endsWith(suffix)).map((p) => p.payload);
    expect(values('/person/detected')).toEqual(['ON', 'OFF']);
    expect(values('/person/count')).toEqual(['1', '2', '1', '0']);
    expect(values('/last_event')).toHaveLength(2);
  });

  it('removes components of pipelines gone while the agent was down, from its stored state', async () => {
    const store = new MemoryHaStateStore();
    const first = make({ store });
    await first.publisher.start([cam, { id: 'yard', labels: ['cat'] }]);
    first.publisher.stop();
    const second = make({ store });
    await second.publisher.start([cam]);
    const cmps = JSON.parse(second.client.discoveries()[0]?.payload ?? '{}').cmps;
    expect(cmps.yard_cat_detected).toEqual({ p: 'binary_sensor' });
    expect(cmps.cam_person_detected.uniq_id).toBe('perch_dev-a_cam_person_detected');
  });

  it('when disabled, only clears an earlier discovery and publishes no state', async () => {
    const { client, publisher } = make({ enabled: false });
    await publisher.start([cam]);
    await publisher.setDetected('cam', 'person', true);
    client.emit('message', 'homeassistant/status', Buffer.from('online'));
    expect(client.published).toEqual([{ topic: DISCOVERY, payload: '', retain: true }]);
  });

  it('counts and logs refused publishes instead of throwing', async () => {
    const { client, publisher } = make();
    client.fail = true;
    await publisher.start([cam]);
    await publisher.setFps('cam', 5);
    expect(publisher.stats()).toMatchObject({ publishErrors: 2, discoveryPublished: 0 });
  });

  it('refuses to publish a payload that breaks the discovery rules', async () => {
    const { client, publisher } = make({
      device: { deviceId: 'dev-a', swVersion: '1.0.0', configurationUrl: 'ftp://controller/devices/dev-a' },
    });
    await expect(publisher.start([cam])).rejects.toMatchObject({ code: 'E_HA_DISCOVERY_INVALID' });
    expect(client.discoveries()).toEqual([]);
    expect(publisher.stats().invalidPayloads).toBe(1);
  });
});
