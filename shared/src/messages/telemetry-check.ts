import { MAX_TIMESTAMP_MS, MESSAGE_ID_PATTERN, SCHEMA_VERSION } from './common';
import {
  MAX_INFO_ENTRIES,
  MAX_INFO_STRING,
  MAX_METRICS,
  METRIC_NAME_PATTERN,
  type TelemetryMessage,
} from './telemetry';

/*
 * A hand-compiled check of `telemetrySchema` for the ingest's hot path. The zod schema stays the source
 * of truth: this check only ever answers "certainly valid", and the decoder sends everything else through
 * zod, which also writes the error. So a rejection here costs a zod run, never a wrong verdict; what must
 * hold is that every value accepted here is accepted by zod with an equal result
 * (shared/test/telemetry-check.test.ts checks that with fast-check, on valid and hostile inputs).
 * It is written for JSON.parse results: plain objects with own enumerable string keys, arrays, primitives.
 */

function isPlainJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

function isMetricValue(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value);
}

// zod measures `max` in code points; UTF-16 units are never fewer, so this bound is the stricter one.
function isInfoValue(value: unknown): boolean {
  return (
    value === null ||
    typeof value === 'boolean' ||
    (typeof value === 'string' && value.length <= MAX_INFO_STRING)
  );
}

function isRecord(value: unknown, maxEntries: number, isValue: (v: unknown) => boolean): boolean {
  if (!isPlainJsonObject(value)) return false;
  const keys = Object.keys(value);
  if (keys.length > maxEntries) return false;
  for (const key of keys) {
    if (!METRIC_NAME_PATTERN.test(key) || !isValue(value[key])) return false;
  }
  return true;
}

/** True only if `telemetrySchema` accepts the JSON value unchanged (see above). */
export function isTelemetryJson(value: unknown): value is TelemetryMessage {
  if (!isPlainJsonObject(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 4 && keys.length !== 5) return false;
  for (const key of keys) {
    if (key !== 'v' && key !== 'id' && key !== 'ts' && key !== 'metrics' && key !== 'info') return false;
  }
  // Four or five distinct keys out of these five: the four required ones are there if every one is own.
  const has = (key: string) => Object.prototype.hasOwnProperty.call(value, key);
  if (!has('v') || !has('id') || !has('ts') || !has('metrics')) return false;
  const { v, id, ts, metrics, info } = value;
  if (v !== SCHEMA_VERSION) return false;
  if (typeof id !== 'string' || id.length < 8 || id.length > 128 || !MESSAGE_ID_PATTERN.test(id))
    return false;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TIMESTAMP_MS) return false;
  if (!isRecord(metrics, MAX_METRICS, isMetricValue)) return false;
  if (keys.length === 5 && !isRecord(info, MAX_INFO_ENTRIES, isInfoValue)) return false;
  return true;
}
