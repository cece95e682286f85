import fc from 'fast-check';
import { decodeMessage, messageSchemas, safeJsonParse, type MessageKind } from '@perch/shared';

const kinds = Object.keys(messageSchemas) as MessageKind[];
const codes = new Set([
  'E_PAYLOAD_TOO_LARGE',
  'E_PAYLOAD_ENCODING',
  'E_PAYLOAD_JSON',
  'E_PAYLOAD_FORBIDDEN_KEY',
  'E_SCHEMA',
  'E_SCHEMA_VERSION',
]);

function codeOf(result: ReturnType<typeof safeJsonParse>): string {
  return result.ok ? 'ok' : result.error.code;
}

describe('safeJsonParse', () => {
  it('parses ordinary JSON', () => {
    expect(safeJsonParse('{"a":[1,2,{"b":null}]}')).toEqual({ ok: true, value: { a: [1, 2, { b: null }] } });
  });

  it('refuses payloads over the size limit before parsing', () => {
    expect(codeOf(safeJsonParse(Buffer.alloc(2048, 0x20), { maxBytes: 1024 }))).toBe('E_PAYLOAD_TOO_LARGE');
    expect(codeOf(safeJsonParse('"' + 'é'.repeat(600) + '"', { maxBytes: 1024 }))).toBe(
      'E_PAYLOAD_TOO_LARGE',
    );
  });

  it('refuses invalid UTF-8', () => {
    expect(codeOf(safeJsonParse(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])))).toBe('E_PAYLOAD_ENCODING');
    expect(codeOf(safeJsonParse(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])))).toBe('E_PAYLOAD_ENCODING');
  });

  it('refuses __proto__ and constructor.prototype keys at any depth', () => {
    expect(codeOf(safeJsonParse('{"__proto__":{"polluted":1}}'))).toBe('E_PAYLOAD_FORBIDDEN_KEY');
    expect(codeOf(safeJsonParse('{"a":[{"b":{"__proto__":{"x":1}}}]}'))).toBe('E_PAYLOAD_FORBIDDEN_KEY');
    expect(codeOf(safeJsonParse('{"constructor":{"prototype":{"x":1}}}'))).toBe('E_PAYLOAD_FORBIDDEN_KEY');
    expect(codeOf(safeJsonParse('{"\\u005f_proto__":{"x":1}}'))).toBe('E_PAYLOAD_FORBIDDEN_KEY');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses nesting deeper than the limit without recursing', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(codeOf(safeJsonParse(deep, { maxBytes: 1e6 }))).toBe('E_PAYLOAD_JSON');
    expect(codeOf(safeJsonParse('{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'))).toBe('ok');
  });

  it('refuses empty payloads and NaN-like literals', () => {
    expect(codeOf(safeJsonParse(''))).toBe('E_PAYLOAD_JSON');
    expect(codeOf(safeJsonParse('{"a":NaN}'))).toBe('E_PAYLOAD_JSON');
    expect(codeOf(safeJsonParse('{"a":Infinity}'))).toBe('E_PAYLOAD_JSON');
    expect(codeOf(safeJsonParse('{"a":-Infinity}'))).toBe('E_PAYLOAD_JSON');
  });
});

/** Hostile payload generators: random bytes, random JSON, structured attacks. */
const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.json({ maxDepth: 6 }),
  fc
    .jsonValue({ maxDepth: 4 })
    .map((v) => JSON.stringify({ v: 1, ...(typeof v === 'object' && v ? v : { x: v }) })),
  fc.jsonValue({ maxDepth: 3 }).map((v) => `{"v":1,"__proto__":${JSON.stringify(v)}}`),
  fc.jsonValue({ maxDepth: 3 }).map((v) => `{"v":1,"a":{"constructor":{"prototype":${JSON.stringify(v)}}}}`),
  fc.integer({ min: 33, max: 400 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.integer({ min: 1, max: 4096 }).map((n) => Buffer.alloc(300 * 1024 + n, 0x61)),
  fc.constantFrom(
    'NaN',
    '{"ts":NaN}',
    '{"ts":1e400}',
    '{"v":1,"ts":-0}',
    '1',
    'null',
    'true',
    '[]',
    '"x"',
    '{"v":"1"}',
  ),
  fc
    .uint8Array({ minLength: 1, maxLength: 40 })
    .map((a) => Buffer.concat([Buffer.from('{"v":1,"id":"'), Buffer.from(a), Buffer.from('"}')])),
);

describe('decodeMessage under hostile input (property)', () => {
  it('never throws, never pollutes prototypes, and returns a known code for every bad payload', () => {
    let rejected = 0;
    fc.assert(
      fc.property(fc.constantFrom(...kinds), hostile, (kind, payload) => {
        const result = decodeMessage(kind, payload);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.prototype).not.toHaveProperty('x');
        if (!result.ok) {
          rejected++;
          expect(codes.has(result.error.code)).toBe(true);
          expect(typeof result.error.message).toBe('string');
        }
      }),
      { numRuns: 5000 },
    );
    expect(rejected).toBeGreaterThan(4900);
  });
});
