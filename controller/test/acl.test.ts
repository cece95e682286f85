import { mayPublish, maySubscribe } from '../src/mqtt/acl';

const o = { prefix: 'perch' };

describe('device ACL (embedded broker, same rules as the dynamic-security roles)', () => {
  it.each([
    ['perch/v1/devices/cam-1/telemetry', true],
    ['perch/v1/devices/cam-1/events', true],
    ['perch/v1/devices/cam-1/reported', true],
    ['perch/v1/devices/cam-1/status', true],
    ['perch/v1/devices/cam-1/cmd-result', true],
    ['perch/v1/devices/cam-1/ha/door/person/detected', true],
    ['homeassistant/device/cam-1/config', true],
    ['perch/v1/devices/cam-1/desired', false],
    ['perch/v1/devices/cam-1/cmd', false],
    ['perch/v1/devices/cam-1/cmd/report-now', false],
    ['perch/v1/devices/cam-2/telemetry', false],
    ['perch/v1/devices/cam-1', false],
    ['perch/v1/devices/cam-1/', false],
    ['perch/v1/devices/cam-1//telemetry', false],
    ['perch/v1/devices/+/telemetry', false],
    ['perch/v1/devices/cam-1/#', false],
    ['homeassistant/device/cam-2/config', false],
    ['homeassistant/sensor/cam-1/fps/config', false],
    ['homeassistant/status', false],
    ['other/topic', false],
  ])('publish %s by cam-1: %s', (topic, allowed) => {
    expect(mayPublish('cam-1', topic, o)).toBe(allowed);
  });

  it.each([
    ['perch/v1/devices/cam-1/desired', true],
    ['perch/v1/devices/cam-1/cmd/+', true],
    ['homeassistant/status', true],
    // Only `cmd/+`, as the Mosquitto role: no single command, no `cmd` itself.
    ['perch/v1/devices/cam-1/cmd/report-now', false],
    ['perch/v1/devices/cam-1/cmd', false],
    ['perch/v1/devices/cam-1/cmd/#', false],
    ['perch/v1/devices/cam-1/#', false],
    ['perch/v1/devices/cam-2/desired', false],
    ['perch/v1/devices/+/desired', false],
    ['perch/v1/devices/cam-1/telemetry', false],
    ['#', false],
  ])('subscribe %s by cam-1: %s', (filter, allowed) => {
    expect(maySubscribe('cam-1', filter, o)).toBe(allowed);
  });
});
