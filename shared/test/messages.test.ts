import {
  decodeMessage,
  encodeMessage,
  messageSchemas,
  type MessageKind,
  type MessageOf,
} from '@perch/shared';

const ts = Date.UTC(2026, 10, 30);
const sha = 'a'.repeat(64);

/** One valid example per message kind; each test below breaks it in one way. */
const valid: { [K in MessageKind]: MessageOf<K> } = {
  desired: {
    v: 1,
    rev: 3,
    ts,
    models: [
      {
        name: 'faces',
        version: '1.2.0',
        target: 'faces/1.2.0/bundle.tar',
        sha256: sha,
        length: 1000,
        securityVersion: 2,
      },
    ],
    pipelines: [
      {
        id: 'front-door',
        model: 'faces',
        source: { kind: 'rtsp', url: 'rtsp://cam/stream' },
        fps: 5,
        rules: {
          labels: ['face'],
          minScore: 0.6,
          zones: [
            {
              id: 'porch',
              points: [
                [0, 0],
                [1, 0],
                [1, 1],
              ],
            },
          ],
          holdOffMs: 2000,
        },
        outputs: { events: true, snapshots: true },
      },
    ],
  },
  reported: {
    v: 1,
    ts,
    rev: 3,
    settled: false,
    models: [{ name: 'faces', version: '1.2.0', sha256: sha, state: 'downloading', progress: 42 }],
    pipelines: [{ id: 'front-door', state: 'running', model: 'faces' }],
    agent: { version: '0.1.0', startedAt: ts, config: { telemetryIntervalS: 60, logLevel: 'info' } },
  },
  status: { v: 1, state: 'online', ts },
  telemetry: {
    v: 1,
    id: 'tm-0000001',
    ts,
    metrics: { 'system.cpu_percent': 12.5, 'pipeline.front-door.fps': 4.9 },
    info: { 'pipeline.front-door.provider': 'cpu' },
  },
  events: {
    v: 1,
    id: 'ev-0000001',
    ts,
    eventId: 'evt-aaaaaaaa',
    phase: 'start',
    pipeline: 'front-door',
    label: 'face',
    score: 0.93,
    box: { x: 0.1, y: 0.2, w: 0.3, h: 0.4 },
    zone: 'porch',
    snapshot: 'snap-1.jpg',
  },
  cmd: { v: 1, id: 'cmd-000001', ts, expiresAt: ts + 60_000, args: { pipeline: 'front-door' } },
  'cmd-result': { v: 1, id: 'res-000001', ts, cmdId: 'cmd-000001', name: 'report-now', ok: true },
};

const kinds = Object.keys(messageSchemas) as MessageKind[];

describe('message schemas', () => {
  it.each(kinds)('%s: a valid message decodes to itself and encodes back', (kind) => {
    const text = encodeMessage(kind, valid[kind] as never);
    const decoded = decodeMessage(kind, Buffer.from(text));
    expect(decoded).toEqual({ ok: true, value: valid[kind] });
  });

  it.each(kinds)('%s: an unknown top-level key is refused with E_SCHEMA', (kind) => {
    const decoded = decodeMessage(kind, JSON.stringify({ ...valid[kind], extra: 1 }));
    expect(decoded.ok ? 'ok' : decoded.error.code).toBe('E_SCHEMA');
  });

  it.each(kinds)('%s: another schema version is refused with E_SCHEMA_VERSION', (kind) => {
    const decoded = decodeMessage(kind, JSON.stringify({ ...valid[kind], v: 2 }));
    expect(decoded.ok ? 'ok' : decoded.error.code).toBe('E_SCHEMA_VERSION');
  });

  it.each(kinds)('%s: a missing schema version is refused with E_SCHEMA', (kind) => {
    const { v: _v, ...rest } = valid[kind] as { v: number };
    const decoded = decodeMessage(kind, JSON.stringify(rest));
    expect(decoded.ok ? 'ok' : decoded.error.code).toBe('E_SCHEMA');
  });

  const broken: Array<[MessageKind, string, (m: Record<string, unknown>) => unknown]> = [
    [
      'desired',
      'bad model sha256',
      (m) => ({ ...m, models: [{ ...(m.models as object[])[0], sha256: 'xyz' }] }),
    ],
    [
      'desired',
      'negative security version',
      (m) => ({ ...m, models: [{ ...(m.models as object[])[0], securityVersion: -1 }] }),
    ],
    [
      'desired',
      'pipeline id with a slash',
      (m) => ({ ...m, pipelines: [{ ...(m.pipelines as object[])[0], id: 'a/b' }] }),
    ],
    [
      'desired',
      'zone with two points',
      (m) => ({
        ...m,
        pipelines: [
          {
            ...(m.pipelines as object[])[0],
            rules: {
              zones: [
                {
                  id: 'z',
                  points: [
                    [0, 0],
                    [1, 1],
                  ],
                },
              ],
            },
          },
        ],
      }),
    ],
    [
      'desired',
      'score threshold above 1',
      (m) => ({ ...m, pipelines: [{ ...(m.pipelines as object[])[0], rules: { minScore: 2 } }] }),
    ],
    [
      'reported',
      'unknown model state',
      (m) => ({ ...m, models: [{ ...(m.models as object[])[0], state: 'exploded' }] }),
    ],
    [
      'reported',
      'progress over 100',
      (m) => ({ ...m, models: [{ ...(m.models as object[])[0], progress: 101 }] }),
    ],
    [
      'reported',
      'unknown log level in effect',
      (m) => ({
        ...m,
        agent: { ...(m.agent as object), config: { telemetryIntervalS: 60, logLevel: 'trace' } },
      }),
    ],
    ['status', 'unknown state', (m) => ({ ...m, state: 'maybe' })],
    ['telemetry', 'metric name with a slash', (m) => ({ ...m, metrics: { 'a/b': 1 } })],
    ['telemetry', 'metric value as string', (m) => ({ ...m, metrics: { cpu: '1' } })],
    ['telemetry', 'short message id', (m) => ({ ...m, id: 'x' })],
    ['telemetry', 'negative timestamp', (m) => ({ ...m, ts: -1 })],
    ['events', 'score above 1', (m) => ({ ...m, score: 1.5 })],
    ['events', 'box outside the frame', (m) => ({ ...m, box: { x: 0, y: 0, w: 2, h: 1 } })],
    ['events', 'unknown phase', (m) => ({ ...m, phase: 'middle' })],
    ['events', 'snapshot ref with a path', (m) => ({ ...m, snapshot: '../../etc/passwd' })],
    ['cmd', 'missing expiry', (m) => ({ ...m, expiresAt: undefined })],
    ['cmd', 'nested args', (m) => ({ ...m, args: { a: { b: 1 } } })],
    ['cmd-result', 'error without a code', (m) => ({ ...m, ok: false, error: { message: 'x' } })],
  ];

  it.each(broken)('%s: %s is refused with E_SCHEMA naming the path', (kind, _what, mutate) => {
    const decoded = decodeMessage(
      kind,
      JSON.stringify(mutate(valid[kind] as unknown as Record<string, unknown>)),
    );
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) {
      expect(decoded.error.code).toBe('E_SCHEMA');
      expect((decoded.error.details as { issues: string[] }).issues.length).toBeGreaterThan(0);
    }
  });

  it('encodeMessage refuses to send an invalid message', () => {
    expect(() => encodeMessage('status', { v: 1, state: 'gone', ts } as never)).toThrow(/status/);
  });
});
