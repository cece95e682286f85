import sjson from 'secure-json-parse';
import type { z } from 'zod';
import { fail, ok, PerchError, type Result } from './errors';
import {
  isTelemetryJson,
  messageSchemas,
  SCHEMA_VERSION,
  type MessageKind,
  type MessageOf,
} from './messages';

/** Default upper bound for one MQTT payload or message body. */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
/** Objects and arrays nested deeper than this are refused before JSON.parse sees them. */
export const DEFAULT_MAX_DEPTH = 32;

export interface DecodeOptions {
  maxBytes?: number;
  maxDepth?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** True when the text holds at most `limit` opening brackets in all, so it cannot nest deeper. */
function fewBrackets(text: string, limit: number): boolean {
  let count = 0;
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) {
      if (++count > limit) return false;
    }
  }
  return true;
}

/** Nesting depth of a JSON text, ignoring brackets inside strings; stops early past `limit`. */
function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return max;
}

/**
 * Size limit, strict UTF-8, nesting limit, then a JSON parse that refuses `__proto__` and
 * `constructor.prototype` keys (secure-json-parse, as fastify uses). Never throws.
 */
export function safeJsonParse(
  payload: Buffer | Uint8Array | string,
  options: DecodeOptions = {},
): Result<unknown> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  let text: string;
  if (typeof payload === 'string') {
    if (Buffer.byteLength(payload, 'utf8') > maxBytes) {
      return fail(new PerchError('E_PAYLOAD_TOO_LARGE', `payload is larger than ${maxBytes} bytes`));
    }
    text = payload;
  } else {
    if (payload.byteLength > maxBytes) {
      return fail(
        new PerchError(
          'E_PAYLOAD_TOO_LARGE',
          `payload of ${payload.byteLength} bytes is larger than ${maxBytes}`,
        ),
      );
    }
    try {
      text = utf8.decode(payload);
    } catch {
      return fail(new PerchError('E_PAYLOAD_ENCODING', 'payload is not valid UTF-8'));
    }
  }
  if (text.length === 0) return fail(new PerchError('E_PAYLOAD_JSON', 'payload is empty'));
  // Most messages have a handful of brackets: counting them with native indexOf beats the scan.
  if (!fewBrackets(text, maxDepth) && nestingDepth(text, maxDepth) > maxDepth) {
    return fail(new PerchError('E_PAYLOAD_JSON', `payload nests deeper than ${maxDepth} levels`));
  }
  try {
    const value: unknown = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
    return ok(value);
  } catch (err) {
    if (err instanceof SyntaxError && /prototype|__proto__|constructor/i.test(err.message)) {
      return fail(
        new PerchError(
          'E_PAYLOAD_FORBIDDEN_KEY',
          'payload contains a forbidden key (__proto__ or constructor.prototype)',
        ),
      );
    }
    return fail(new PerchError('E_PAYLOAD_JSON', 'payload is not well-formed JSON'));
  }
}

/** One line per failing path, e.g. `models.0.sha256: must be a lowercase hex sha256`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map(
    (issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`,
  );
}

/** Validates an already parsed value against a schema; returns a coded error listing every issue. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what = 'payload',
): Result<z.infer<S>> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return ok(parsed.data);
  const issues = formatIssues(parsed.error);
  return fail(
    new PerchError('E_SCHEMA', `${what} does not match its schema: ${issues.slice(0, 5).join('; ')}`, {
      issues,
    }),
  );
}

/**
 * The safe decoder for every Perch message: size limit, strict UTF-8, safe JSON parse, schema
 * version check, then the message schema. Returns the typed message or a coded error; never throws.
 */
export function decodeMessage<K extends MessageKind>(
  kind: K,
  payload: Buffer | Uint8Array | string,
  options: DecodeOptions = {},
): Result<MessageOf<K>> {
  try {
    const parsed = safeJsonParse(payload, options);
    if (!parsed.ok) return parsed;
    const value = parsed.value;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const v = (value as { v?: unknown }).v;
      if (typeof v === 'number' && v !== SCHEMA_VERSION) {
        return fail(
          new PerchError(
            'E_SCHEMA_VERSION',
            `${kind} message has schema version ${v}, expected ${SCHEMA_VERSION}`,
          ),
        );
      }
    }
    // Telemetry is most of the traffic: a precompiled check vouches for the usual valid message, zod
    // decides (and explains) everything else.
    if (kind === 'telemetry' && isTelemetryJson(value)) return ok(value as MessageOf<K>);
    return validate(messageSchemas[kind], value, `${kind} message`) as Result<MessageOf<K>>;
  } catch (err) {
    // Defensive: a validator bug must not take the process down with it.
    return fail(new PerchError('E_INTERNAL', 'decoder failed unexpectedly', undefined, { cause: err }));
  }
}

/** Validates an outgoing message and serialises it; throws E_SCHEMA for a bug in our own code. */
export function encodeMessage<K extends MessageKind>(kind: K, message: MessageOf<K>): string {
  const checked = validate(messageSchemas[kind], message, `outgoing ${kind} message`);
  if (!checked.ok) throw checked.error;
  return JSON.stringify(checked.value);
}
