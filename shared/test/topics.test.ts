import fc from 'fast-check';
import {
  assertId,
  assertPublishable,
  isValidId,
  parseTopic,
  PerchError,
  TOPIC_KINDS,
  topics,
} from '@perch/shared';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof PerchError ? err.code : 'not a PerchError';
  }
  return undefined;
}

describe('ids', () => {
  it.each(['a', '0', 'cam-1', 'a'.repeat(64), 'x-y-z-9'])('accepts %p', (id) => {
    expect(isValidId(id)).toBe(true);
    expect(assertId(id)).toBe(id);
  });

  it.each(['', '-a', 'A', 'a_b', 'a/b', 'a+b', 'a#', 'a'.repeat(65), 'é', 'a b', '../x', 'a\u0000'])(
    'rejects %p with E_INVALID_ID',
    (id) => {
      expect(isValidId(id)).toBe(false);
      expect(codeOf(() => assertId(id))).toBe('E_INVALID_ID');
    },
  );

  it('rejects non-strings', () => {
    expect(codeOf(() => assertId(42))).toBe('E_INVALID_ID');
    expect(codeOf(() => assertId(undefined))).toBe('E_INVALID_ID');
  });
});

describe('topic builders', () => {
  it('build every topic of the design under the default prefix', () => {
    expect(topics.desired('cam-1')).toBe('perch/v1/devices/cam-1/desired');
    expect(topics.reported('cam-1')).toBe('perch/v1/devices/cam-1/reported');
    expect(topics.status('cam-1')).toBe('perch/v1/devices/cam-1/status');
    expect(topics.telemetry('cam-1')).toBe('perch/v1/devices/cam-1/telemetry');
    expect(topics.events('cam-1')).toBe('perch/v1/devices/cam-1/events');
    expect(topics.cmd('cam-1', 'report-now')).toBe('perch/v1/devices/cam-1/cmd/report-now');
    expect(topics.cmdResult('cam-1')).toBe('perch/v1/devices/cam-1/cmd-result');
    expect(topics.cmdAll('cam-1')).toBe('perch/v1/devices/cam-1/cmd/+');
    expect(topics.subtree('cam-1')).toBe('perch/v1/devices/cam-1/#');
    expect(topics.all('telemetry')).toBe('perch/v1/devices/+/telemetry');
  });

  it('use a configured prefix', () => {
    expect(topics.events('d1', 'site/a')).toBe('site/a/v1/devices/d1/events');
  });

  it('refuse a bad device id or command name with E_INVALID_ID', () => {
    expect(codeOf(() => topics.desired('Bad'))).toBe('E_INVALID_ID');
    expect(codeOf(() => topics.events('a/b'))).toBe('E_INVALID_ID');
    expect(codeOf(() => topics.telemetry('+'))).toBe('E_INVALID_ID');
    expect(codeOf(() => topics.cmd('d1', '#'))).toBe('E_INVALID_ID');
  });

  it('refuse a prefix with wildcards or empty levels', () => {
    expect(codeOf(() => topics.desired('d1', 'a/+'))).toBe('E_TOPIC_UNKNOWN');
    expect(codeOf(() => topics.desired('d1', 'a//b'))).toBe('E_TOPIC_UNKNOWN');
    expect(codeOf(() => topics.desired('d1', ''))).toBe('E_TOPIC_UNKNOWN');
  });
});

describe('parseTopic', () => {
  it.each(TOPIC_KINDS.filter((k) => k !== 'cmd'))('round-trips %s', (kind) => {
    const builder = {
      desired: topics.desired,
      reported: topics.reported,
      status: topics.status,
      telemetry: topics.telemetry,
      events: topics.events,
      'cmd-result': topics.cmdResult,
    }[kind as Exclude<typeof kind, 'cmd'>];
    const parsed = parseTopic(builder('dev-7'));
    expect(parsed).toEqual({ ok: true, value: { kind, deviceId: 'dev-7' } });
  });

  it('round-trips a command with its name', () => {
    expect(parseTopic(topics.cmd('dev-7', 'snapshot'))).toEqual({
      ok: true,
      value: { kind: 'cmd', deviceId: 'dev-7', name: 'snapshot' },
    });
  });

  it('honours the prefix', () => {
    expect(parseTopic('site/v1/devices/d/events', 'site').ok).toBe(true);
    expect(parseTopic('perch/v1/devices/d/events', 'site').ok).toBe(false);
  });

  it.each([
    ['other/v1/devices/d/events', 'E_TOPIC_UNKNOWN'],
    ['perch/v2/devices/d/events', 'E_TOPIC_UNKNOWN'],
    ['perch/v1/devices/d/unknown', 'E_TOPIC_UNKNOWN'],
    ['perch/v1/devices/d/events/extra', 'E_TOPIC_UNKNOWN'],
    ['perch/v1/devices/d/cmd', 'E_TOPIC_UNKNOWN'],
    ['perch/v1/devices/d', 'E_TOPIC_UNKNOWN'],
    ['perch/v1/devices/D/events', 'E_INVALID_ID'],
    ['perch/v1/devices/+/events', 'E_INVALID_ID'],
    ['perch/v1/devices/d/cmd/Bad', 'E_INVALID_ID'],
    ['', 'E_TOPIC_UNKNOWN'],
  ])('rejects %p with %s', (topic, code) => {
    const parsed = parseTopic(topic);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.code).toBe(code);
  });
});

/** parseTopic as first written (split on '/'), kept to check the indexOf version against. */
function referenceParse(topic: string, prefix = 'perch'): string {
  const head = `${prefix}/v1/devices/`;
  if (!topic.startsWith(head)) return 'E_TOPIC_UNKNOWN';
  const [deviceId, kind, name, ...extra] = topic.slice(head.length).split('/');
  if (extra.length > 0 || deviceId === undefined || kind === undefined) return 'E_TOPIC_UNKNOWN';
  if (!isValidId(deviceId)) return 'E_INVALID_ID';
  if (kind === 'cmd') {
    if (name === undefined) return 'E_TOPIC_UNKNOWN';
    return isValidId(name) ? JSON.stringify({ kind, deviceId, name }) : 'E_INVALID_ID';
  }
  if (name !== undefined || !(TOPIC_KINDS as readonly string[]).includes(kind)) return 'E_TOPIC_UNKNOWN';
  return JSON.stringify({ kind, deviceId });
}

describe('parseTopic against the split-based reference (property)', () => {
  it('agrees on every topic, well-formed or not', () => {
    const level = fc.oneof(
      fc.constantFrom(...TOPIC_KINDS, 'dev-1', 'x', '', 'Dev', '+', '#', 'a'.repeat(65)),
      fc.stringMatching(/^[a-z0-9-]{0,6}$/),
      fc.string({ maxLength: 6 }),
    );
    const topic = fc.oneof(
      fc.array(level, { maxLength: 5 }).map((levels) => ['perch/v1/devices', ...levels].join('/')),
      fc.string({ maxLength: 40 }),
      fc.string({ maxLength: 20 }).map((s) => `perch/v1/devices/${s}`),
    );
    fc.assert(
      fc.property(topic, (t) => {
        const got = parseTopic(t);
        expect(got.ok ? JSON.stringify(got.value) : got.error.code).toBe(referenceParse(t));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('assertPublishable', () => {
  it('passes a concrete topic through', () => {
    expect(assertPublishable('perch/v1/devices/d/events')).toBe('perch/v1/devices/d/events');
  });

  it.each(['perch/v1/devices/+/events', 'perch/#', '#', '', 'a\u0000b'])(
    'refuses %p with E_TOPIC_WILDCARD',
    (t) => {
      expect(codeOf(() => assertPublishable(t))).toBe('E_TOPIC_WILDCARD');
    },
  );
});
