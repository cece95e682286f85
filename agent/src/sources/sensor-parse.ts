import { safeJsonParse } from '@perch/shared';

/**
 * One sensor reading from one line of text. Accepted: numbers separated by commas, semicolons or spaces
 * (`21.5`, `0.1,0.2,9.8`), a JSON array of numbers, or a JSON object from which `fields` (dotted paths)
 * are taken in order. The reading must have exactly `channels` finite values.
 */
export type ParsedLine = { ok: true; values: number[] } | { ok: false; reason: string } | { ok: 'empty' };

export interface ParseOptions {
  readonly channels: number;
  readonly fields?: readonly string[] | undefined;
  readonly maxLineBytes: number;
}

const SEPARATORS = /[\s,;]+/;

export function parseSensorLine(line: string, opts: ParseOptions): ParsedLine {
  const text = line.trim();
  if (text.length === 0) return { ok: 'empty' };
  const first = text[0];
  if (first === '{' || first === '[') return fromJson(text, opts);
  const parts = text.split(SEPARATORS);
  const values: number[] = [];
  for (const p of parts) {
    // Number('') is 0 and Number('0x1f') is 31: only plain decimal notation counts as a reading.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(p))
      return { ok: false, reason: `not a number: ${clip(p)}` };
    values.push(Number(p));
  }
  return checkCount(values, opts);
}

function fromJson(text: string, opts: ParseOptions): ParsedLine {
  const parsed = safeJsonParse(text, { maxBytes: opts.maxLineBytes, maxDepth: 8 });
  if (!parsed.ok) return { ok: false, reason: parsed.error.message };
  const value = parsed.value;
  if (Array.isArray(value)) {
    if (!value.every((v): v is number => typeof v === 'number' && Number.isFinite(v))) {
      return { ok: false, reason: 'JSON array holds something other than finite numbers' };
    }
    return checkCount(value, opts);
  }
  if (value !== null && typeof value === 'object') {
    if (!opts.fields) return { ok: false, reason: 'JSON object, but no fields are configured' };
    const values: number[] = [];
    for (const field of opts.fields) {
      const v = pick(value, field);
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        return { ok: false, reason: `field ${field} is missing or not a finite number` };
      }
      values.push(v);
    }
    return { ok: true, values };
  }
  return { ok: false, reason: 'JSON value is neither an array nor an object' };
}

function pick(obj: object, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, key))
      return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function checkCount(values: number[], opts: ParseOptions): ParsedLine {
  if (values.length !== opts.channels) {
    return { ok: false, reason: `expected ${opts.channels} value(s), got ${values.length}` };
  }
  return { ok: true, values };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
