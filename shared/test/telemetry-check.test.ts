import fc from 'fast-check';
import {
  decodeMessage,
  fail,
  isTelemetryJson,
  PerchError,
  METRIC_NAME_PATTERN,
  SCHEMA_VERSION,
  safeJsonParse,
  telemetrySchema,
  validate,
  type Result,
  type TelemetryMessage,
} from '@perch/shared';

/** The decoder as it was before the precompiled check: safe parse, version, then zod alone. */
function referenceDecode(payload: string | Buffer): Result<TelemetryMessage> {
  const parsed = safeJsonParse(payload);
  if (!parsed.ok) return parsed;
  const value = parsed.value as { v?: unknown } | null;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    if (typeof value.v === 'number' && value.v !== SCHEMA_VERSION) {
      return fail(
        new PerchError(
          'E_SCHEMA_VERSION',
          `telemetry message has schema version ${value.v}, expected ${SCHEMA_VERSION}`,
        ),
      );
    }
  }
  return validate(telemetrySchema, value, 'telemetry message');
}

const metricName = fc.oneof(
  { weight: 30, arbitrary: fc.stringMatching(METRIC_NAME_PATTERN) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'A', '_x', '.x', 'constructor', 'toString', 'a'.repeat(129), '1', 'é'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);
const timestamp = fc.oneof(
  { weight: 10, arbitrary: fc.nat() },
  fc.maxSafeNat(),
  fc.constantFrom(0, -0, -1, 1.5, 8.64e15, 8.64e15 + 1, Number.MAX_SAFE_INTEGER + 2, 1e300),
  fc.double(),
);
const messageId = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{8,128}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 140 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{127,130}$/) },
);
const infoValue = fc.oneof(
  { weight: 20, arbitrary: fc.string({ maxLength: 20 }) },
  fc.constantFrom('x'.repeat(512), 'x'.repeat(513), 'é'.repeat(512), '😀'.repeat(256), '😀'.repeat(257)),
  { weight: 5, arbitrary: fc.boolean() },
  { weight: 5, arbitrary: fc.constant(null) },
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Mostly valid telemetry, with every field sometimes wrong, missing or joined by others. */
const telemetryLike = fc
  .record(
    {
      v: fc.oneof(
        { weight: 8, arbitrary: fc.constant(1) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
      ),
      id: fc.oneof(
        { weight: 8, arbitrary: messageId },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
      ),
      ts: fc.oneof(
        { weight: 8, arbitrary: timestamp },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
      ),
      metrics: fc.oneof(
        {
          weight: 8,
          arbitrary: fc.dictionary(
            metricName,
            fc.oneof({ weight: 4, arbitrary: fc.integer() }, { weight: 1, arbitrary: fc.double() }),
            { maxKeys: 8 },
          ),
        },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      ),
      info: fc.oneof(
        { weight: 4, arbitrary: fc.dictionary(metricName, infoValue, { maxKeys: 6 }) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      ),
    },
    { requiredKeys: ['v', 'id', 'ts', 'metrics'] },
  )
  .chain((base) =>
    fc
      .record({
        variant: fc.constantFrom(
          ...Array<'as-is'>(12).fill('as-is'),
          'drop-key',
          'extra-key',
          'too-many-metrics',
          'too-many-info',
        ),
        key: fc.constantFrom('v', 'id', 'ts', 'metrics', 'info', 'extra', 'V', 'constructor'),
        extra: fc.jsonValue({ maxDepth: 1 }),
      })
      .map(({ variant, key, extra }) => {
        const out: Record<string, unknown> = { ...base };
        if (variant === 'drop-key') delete out[key];
        else if (variant === 'extra-key') out[key] = extra;
        else if (variant === 'too-many-metrics') {
          out.metrics = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`m${i}`, i]));
        } else if (variant === 'too-many-info') {
          out.info = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`i${i}`, true]));
        }
        return out;
      }),
  );

/** What the decoder actually sees: JSON text, sometimes with keys spelled in ways JSON.parse allows. */
const telemetryText = fc.oneof(
  { weight: 6, arbitrary: telemetryLike.map((m) => JSON.stringify(m)) },
  {
    weight: 1,
    arbitrary: telemetryLike.map((m) =>
      JSON.stringify(m).replace('"metrics":{', '"metrics":{"__proto__":1,'),
    ),
  },
  { weight: 1, arbitrary: telemetryLike.map((m) => JSON.stringify(m).replace('{', '{"__proto__":{},')) },
  { weight: 1, arbitrary: telemetryLike.map((m) => JSON.stringify(m).replace('"v":1', '"v":1,"v":2')) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
);

describe('isTelemetryJson, the precompiled telemetry check', () => {
  it('accepts only what the zod schema accepts, with an equal result (property)', () => {
    let accepted = 0;
    let zodAccepted = 0;
    fc.assert(
      fc.property(telemetryText, (text) => {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return;
        }
        const zod = telemetrySchema.safeParse(value);
        if (zod.success) zodAccepted++;
        if (isTelemetryJson(value)) {
          accepted++;
          expect(zod.success).toBe(true);
          expect(value).toStrictEqual(zod.data);
          expect(JSON.stringify((value as TelemetryMessage).metrics)).toBe(JSON.stringify(zod.data?.metrics));
        }
      }),
      { numRuns: 10_000 },
    );
    // Not vacuous: valid messages take the fast path. It misses a few on purpose (a miss only costs
    // speed): `__proto__` keys, which zod drops, and info strings over 512 UTF-16 units but not code points.
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeGreaterThan(zodAccepted * 0.8);
  });

  it('accepts every message the agent sends', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            v: fc.constant(1 as const),
            id: fc.stringMatching(/^[A-Za-z0-9_-]{8,128}$/),
            ts: fc.integer({ min: 0, max: 2 ** 31 }).map((n) => n * 1000),
            metrics: fc.dictionary(
              fc.stringMatching(METRIC_NAME_PATTERN),
              fc.double({ noNaN: true, noDefaultInfinity: true }),
              {
                maxKeys: 20,
              },
            ),
            info: fc.dictionary(
              fc.stringMatching(METRIC_NAME_PATTERN),
              fc.oneof(fc.string({ maxLength: 512 }), fc.boolean(), fc.constant(null)),
              { maxKeys: 5 },
            ),
          },
          { requiredKeys: ['v', 'id', 'ts', 'metrics'] },
        ),
        (message) => {
          const value: unknown = JSON.parse(JSON.stringify(message));
          expect(telemetrySchema.safeParse(value).success).toBe(true);
          expect(isTelemetryJson(value)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses values that did not come out of JSON.parse as plain objects', () => {
    const valid = { v: 1, id: 'abcdefgh', ts: 1, metrics: {} };
    expect(isTelemetryJson(valid)).toBe(true);
    expect(isTelemetryJson(Object.assign(Object.create(null) as object, valid))).toBe(false);
    expect(isTelemetryJson({ ...valid, metrics: Object.create({ a: 1 }) as object })).toBe(false);
    expect(isTelemetryJson([valid])).toBe(false);
    expect(isTelemetryJson(null)).toBe(false);
    expect(isTelemetryJson({ ...valid, info: undefined })).toBe(false);
  });
});

describe('decodeMessage for telemetry', () => {
  it('gives the same result as the zod-only decoder on valid and hostile payloads (property)', () => {
    const payload = fc.oneof(
      { weight: 4, arbitrary: telemetryText },
      { weight: 1, arbitrary: telemetryText.map((t) => Buffer.from(t)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 1, max: 40 })
          .map((n) => '{"v":1,"metrics":' + '['.repeat(n) + ']'.repeat(n) + '}'),
      },
    );
    fc.assert(
      fc.property(payload, (p) => {
        const got = decodeMessage('telemetry', p);
        const want = referenceDecode(p);
        expect(got.ok).toBe(want.ok);
        if (got.ok && want.ok) expect(got.value).toStrictEqual(want.value);
        if (!got.ok && !want.ok) {
          expect(got.error.code).toBe(want.error.code);
          expect(got.error.message).toBe(want.error.message);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
