import { buildDiscovery, validateDiscoveryMessage } from '../../../src/integrations/homeassistant';

const TOPIC = 'homeassistant/device/dev-a/config';
const base = () =>
  buildDiscovery({ deviceId: 'dev-a', swVersion: '1.0.0' }, [
    { id: 'cam', labels: ['person'], snapshots: true },
  ]).payload as Record<string, unknown> & { cmps: Record<string, Record<string, unknown>> };

function issuesOf(payload: unknown, topic = TOPIC): string[] {
  return validateDiscoveryMessage(topic, typeof payload === 'string' ? payload : JSON.stringify(payload))
    .issues;
}

describe('Home Assistant discovery validator', () => {
  it('accepts an empty payload (removal) on a valid topic', () => {
    expect(validateDiscoveryMessage(TOPIC, '')).toEqual({ ok: true, issues: [] });
  });

  it('refuses topic levels outside [a-zA-Z0-9_-] and malformed topics', () => {
    expect(issuesOf('', 'homeassistant/device/dev.a/config')).toEqual([expect.stringMatching(/must match/)]);
    expect(issuesOf('', 'homeassistant/device/config')[0]).toMatch(/is not <prefix>/);
    expect(issuesOf('', 'other/device/dev-a/config')[0]).toMatch(/is not <prefix>/);
  });

  it('requires unique_id in device-based discovery', () => {
    const p = base();
    delete p.cmps['cam_person_detected']?.uniq_id;
    expect(issuesOf(p)).toContain(
      'components.cam_person_detected: unique_id is required for device-based discovery',
    );
  });

  it('requires state_topic for sensors and exactly one image source for images', () => {
    const p = base();
    delete p.cmps['cam_person_count']?.stat_t;
    (p.cmps['cam_snapshot'] as Record<string, unknown>).url_t = 'x/y';
    const issues = issuesOf(p);
    expect(issues).toContain('components.cam_person_count: state_topic (stat_t) is required for sensor');
    expect(issues).toContain(
      'components.cam_snapshot: image needs exactly one of image_topic (img_t) and url_topic (url_t)',
    );
  });

  it('expands abbreviations and flags a key given both ways, and unknown keys', () => {
    const p = base();
    Object.assign(p.cmps['cam_fps'] as object, { state_topic: 'a/b', stat_tt: 'typo' });
    const issues = issuesOf(p);
    expect(issues).toContain('components.cam_fps: state_topic given twice (abbreviated and in full)');
    expect(issues).toContain('components.cam_fps: unknown key stat_tt');
  });

  it('requires device identifiers and an origin name, and refuses overriding them per component', () => {
    const p = base();
    p.dev = { name: 'x' };
    p.o = { sw: '1' };
    (p.cmps['cam_fps'] as Record<string, unknown>).dev = { ids: ['y'] };
    const issues = issuesOf(p);
    expect(issues).toContain('device needs identifiers (ids) or connections (cns)');
    expect(issues).toContain('origin.name is required');
    expect(issues).toContain('components.cam_fps: device cannot be overridden in a component');
  });

  it('checks component ids, enumerations and device class units', () => {
    const p = base();
    p.cmps['bad id'] = { p: 'sensor', uniq_id: 'u1', stat_t: 'a/b' };
    Object.assign(p.cmps['cpu_temperature'] as object, { unit_of_meas: 'C' });
    Object.assign(p.cmps['cam_person_detected'] as object, { dev_cla: 'person' });
    Object.assign(p.cmps['cam_latency'] as object, { ent_cat: 'secret' });
    const issues = issuesOf(p);
    expect(issues).toContain('components.bad id: component id must match [a-zA-Z0-9_-]+');
    expect(issues).toContain('components.cpu_temperature: unit C does not fit device_class temperature');
    expect(issues).toContain(
      'components.cam_person_detected.device_class person is not a binary_sensor device class',
    );
    expect(issues).toContain('components.cam_latency.entity_category must be config or diagnostic');
  });

  it('refuses availability together with availability_topic, and duplicate unique ids', () => {
    const p = base();
    p.avty_t = 'x/status';
    (p.cmps['cam_fps'] as Record<string, unknown>).uniq_id = 'perch_dev-a_cam_latency';
    const issues = issuesOf(p);
    expect(
      issues.some((i) => i.includes('availability and availability_topic must not be used together')),
    ).toBe(true);
    expect(issues.some((i) => i.includes('is used by another component'))).toBe(true);
  });

  it('expands the ~ base topic like Home Assistant', () => {
    const p = base();
    p.cmps['extra'] = {
      p: 'sensor',
      uniq_id: 'u-extra',
      '~': 'perch/v1/devices/dev-a/ha',
      stat_t: '~/extra',
    };
    expect(issuesOf(p)).toEqual([]);
  });

  it('refuses non-JSON, non-object payloads and single-component discovery', () => {
    expect(issuesOf('not json')).toContain('payload is not JSON');
    expect(issuesOf('[1]')).toContain('payload must be a JSON object');
    expect(issuesOf({}, 'homeassistant/sensor/dev-a/x/config')[0]).toMatch(/only device-based/);
  });
});
