import { parseSensorLine } from '../../src/sources/sensor-parse';
import { topicMatches } from '../../src/sources/sensor-mqtt';

const one = { channels: 1, maxLineBytes: 1024 };
const three = { channels: 3, maxLineBytes: 1024 };

describe('parseSensorLine', () => {
  it('reads plain numbers, separated lists and JSON arrays', () => {
    expect(parseSensorLine(' 21.5 ', one)).toEqual({ ok: true, values: [21.5] });
    expect(parseSensorLine('-1e-3', one)).toEqual({ ok: true, values: [-0.001] });
    expect(parseSensorLine('0.1, 0.2;9.8', three)).toEqual({ ok: true, values: [0.1, 0.2, 9.8] });
    expect(parseSensorLine('[1,2,3]', three)).toEqual({ ok: true, values: [1, 2, 3] });
  });

  it('takes configured fields from JSON objects, dotted paths included', () => {
    const opts = { channels: 2, fields: ['t', 'acc.x'], maxLineBytes: 1024 };
    expect(parseSensorLine('{"t": 20, "acc": {"x": -1.5}, "id": "a"}', opts)).toEqual({
      ok: true,
      values: [20, -1.5],
    });
    expect(parseSensorLine('{"t": 20}', opts)).toMatchObject({ ok: false });
  });

  it('treats an empty line as nothing and rejects everything else', () => {
    expect(parseSensorLine('   ', one)).toEqual({ ok: 'empty' });
    for (const bad of [
      'abc',
      '0x1f',
      'NaN',
      'Infinity',
      '1,2',
      '[1,"2"]',
      '{"__proto__": {"x": 1}}',
      '"5"',
      '{',
    ]) {
      expect(parseSensorLine(bad, one)).toMatchObject({ ok: false });
    }
  });
});

describe('topicMatches', () => {
  it('matches MQTT filters as a broker does', () => {
    expect(topicMatches('home/+/temp', 'home/kitchen/temp')).toBe(true);
    expect(topicMatches('home/+/temp', 'home/kitchen/hum')).toBe(false);
    expect(topicMatches('home/#', 'home/a/b/c')).toBe(true);
    expect(topicMatches('home/#', 'home')).toBe(true);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
  });
});
