import { mayPublish, maySubscribe } from '../src/mqtt/acl';

describe('device ACL', () => {
  it.each([
    ['perch/v1/devices/cam-1/telemetry', true],
    ['perch/v1/devices/cam-1/events', true],
    ['perch/v1/devices/cam-1/reported', true],
    ['perch/v1/devices/cam-1/status', true],
    ['perch/v1/devices/cam-1/cmd-result', true],
    ['homeassistant/sensor/cam-1/fps/config', true],
    ['perch/v1/devices/cam-1/desired', false],
    ['perch/v1/devices/cam-1/cmd/report-now', false],
    ['perch/v1/devices/cam-2/telemetry', false],
    ['perch/v1/devices/cam-1/telemetry/extra', false],
    ['perch/v1/devices/+/telemetry', false],
    ['homeassistant/sensor/cam-2/fps/config', false],
    ['homeassistant/status', false],
    ['other/topic', false],
  ])('publish %s by cam-1: %s', (topic, allowed) => {
    expect(mayPublish('cam-1', topic, 'perch')).toBe(allowed);
  });

  it.each([
    ['perch/v1/devices/cam-1/desired', true],
    ['perch/v1/devices/cam-1/cmd/+', true],
    ['perch/v1/devices/cam-1/cmd/report-now', true],
    ['homeassistant/status', true],
    ['perch/v1/devices/cam-1/#', false],
    ['perch/v1/devices/cam-2/desired', false],
    ['perch/v1/devices/+/desired', false],
    ['perch/v1/devices/cam-1/telemetry', false],
    ['#', false],
  ])('subscribe %s by cam-1: %s', (filter, allowed) => {
    expect(maySubscribe('cam-1', filter, 'perch')).toBe(allowed);
  });
});
