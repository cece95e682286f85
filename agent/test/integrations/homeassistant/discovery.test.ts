import { topics } from '@perch/shared';
import {
  buildDiscovery,
  labelSlug,
  validateDiscoveryMessage,
  type HaDevice,
  type HaPipeline,
} from '../../../src/integrations/homeassistant';

const device: HaDevice = { deviceId: 'dev-a', swVersion: '0.1.0', name: 'Front porch' };
const pipelines: HaPipeline[] = [
  { id: 'front-door', labels: ['person', 'car'], snapshots: true },
  { id: 'yard', name: 'Yard', labels: ['traffic light', 'Cat', 'cat'] },
];

type Cmps = Record<string, Record<string, unknown>>;
const cmpsOf = (payload: Record<string, unknown>) => payload.cmps as Cmps;

describe('Home Assistant device-based discovery payload', () => {
  it('is published on <prefix>/device/<device id>/config and passes the validator', () => {
    const { topic, payload } = buildDiscovery(device, pipelines);
    expect(topic).toBe('homeassistant/device/dev-a/config');
    expect(validateDiscoveryMessage(topic, JSON.stringify(payload))).toEqual({ ok: true, issues: [] });
    expect(payload.dev).toMatchObject({
      ids: ['perch_dev-a'],
      name: 'Front porch',
      mf: 'Perch',
      sw: '0.1.0',
    });
    expect(payload.o).toEqual({ name: 'Perch', sw: '0.1.0' });
  });

  it('has a detected binary sensor and a count sensor per pipeline and label', () => {
    const cmps = cmpsOf(buildDiscovery(device, pipelines).payload);
    expect(cmps['front-door_person_detected']).toMatchObject({
      p: 'binary_sensor',
      dev_cla: 'occupancy',
      stat_t: 'perch/v1/devices/dev-a/ha/front-door/person/detected',
      uniq_id: 'perch_dev-a_front-door_person_detected',
    });
    expect(cmps['front-door_car_count']).toMatchObject({ p: 'sensor', stat_cla: 'measurement' });
    const yard = Object.keys(cmps).filter((k) => k.startsWith('yard_') && k.endsWith('_detected'));
    expect(yard).toHaveLength(3); // 'Cat' and 'cat' stay apart
  });

  it('has fps, latency, CPU temperature, last event sensors and a snapshot image', () => {
    const cmps = cmpsOf(buildDiscovery(device, pipelines).payload);
    expect(cmps['front-door_fps']).toMatchObject({ p: 'sensor', unit_of_meas: 'fps', ent_cat: 'diagnostic' });
    expect(cmps['yard_latency']).toMatchObject({ dev_cla: 'duration', unit_of_meas: 'ms' });
    expect(cmps.cpu_temperature).toMatchObject({ dev_cla: 'temperature', unit_of_meas: '°C' });
    expect(cmps.last_event).toMatchObject({ val_tpl: '{{ value_json.label }}' });
    expect(cmps['front-door_snapshot']).toMatchObject({
      p: 'image',
      img_t: expect.any(String),
      cont_type: 'image/jpeg',
    });
    expect(cmps['yard_snapshot']).toBeUndefined();
    const byUrl = cmpsOf(buildDiscovery(device, pipelines, { snapshotMode: 'url' }).payload);
    expect(byUrl['front-door_snapshot']).toEqual({
      p: 'image',
      name: 'front-door snapshot',
      url_t: 'perch/v1/devices/dev-a/ha/front-door/snapshot_url',
      uniq_id: 'perch_dev-a_front-door_snapshot',
    });
  });

  it("takes availability from the agent's JSON status topic through a value template", () => {
    const { payload } = buildDiscovery(device, pipelines);
    expect(payload.avty).toEqual([
      {
        topic: topics.status('dev-a'),
        value_template: '{{ value_json.state }}',
        payload_available: 'online',
        payload_not_available: 'offline',
      },
    ]);
  });

  it('keeps unique ids stable whatever the order of pipelines and labels', () => {
    const ids = (p: HaPipeline[]) =>
      Object.values(cmpsOf(buildDiscovery(device, p).payload))
        .map((c) => c.uniq_id)
        .sort();
    const reversed = [...pipelines].reverse().map((p) => ({ ...p, labels: [...p.labels].reverse() }));
    expect(ids(reversed)).toEqual(ids(pipelines));
    expect(new Set(ids(pipelines)).size).toBe(ids(pipelines).length);
  });

  it('points every state topic into the device subtree, never at desired or cmd', () => {
    const { payload } = buildDiscovery(device, pipelines, { snapshotMode: 'image' });
    const subtree = topics.subtree('dev-a').slice(0, -1);
    const stateTopics = Object.values(cmpsOf(payload)).flatMap((c) =>
      Object.entries(c)
        .filter(([k]) => k.endsWith('_t'))
        .map(([, v]) => v as string),
    );
    expect(stateTopics.length).toBeGreaterThan(10);
    for (const t of stateTopics) {
      expect(t.startsWith(`${subtree}ha/`)).toBe(true);
      expect(t).not.toMatch(/\/(desired|cmd)(\/|$)/);
    }
  });

  it('honours configurable prefixes', () => {
    const { topic, payload } = buildDiscovery(device, pipelines, {
      discoveryPrefix: 'ha',
      topicPrefix: 'site1',
    });
    expect(topic).toBe('ha/device/dev-a/config');
    expect(cmpsOf(payload).cpu_temperature?.stat_t).toBe('site1/v1/devices/dev-a/ha/cpu_temperature');
    expect(validateDiscoveryMessage(topic, JSON.stringify(payload), { discoveryPrefix: 'ha' }).ok).toBe(true);
  });

  it('sends removal stubs for components that went away, and they pass the validator', () => {
    const { topic, payload } = buildDiscovery(device, [], {}, new Map([['front-door_fps', 'sensor']]));
    expect(cmpsOf(payload)['front-door_fps']).toEqual({ p: 'sensor' });
    expect(validateDiscoveryMessage(topic, JSON.stringify(payload)).ok).toBe(true);
  });

  it('refuses invalid device and pipeline ids before they become topics', () => {
    expect(() => buildDiscovery({ ...device, deviceId: 'Dev/A' }, [])).toThrow(/device id/);
    expect(() => buildDiscovery(device, [{ id: 'a b', labels: [] }])).toThrow(/pipeline id/);
  });
});

describe('labelSlug', () => {
  it('keeps plain labels and gives others a stable hash suffix', () => {
    expect(labelSlug('person')).toBe('person');
    expect(labelSlug('traffic light')).toMatch(/^traffic_light_[0-9a-f]{8}$/);
    expect(labelSlug('traffic light')).toBe(labelSlug('traffic light'));
    expect(labelSlug('Cat')).not.toBe(labelSlug('cat'));
    expect(labelSlug('東京')).toMatch(/^label_[0-9a-f]{8}$/);
    expect(labelSlug('x'.repeat(100)).length).toBeLessThanOrEqual(40);
  });
});
