import { isValidId } from '@perch/shared';
import type { CommandContext } from '../context';
import { CliFailure, EXIT } from '../failure';

/** Wraps a command body: builds its context, passes commander's arguments through. */
export type Runner = <A extends unknown[]>(
  fn: (ctx: CommandContext, ...args: A) => Promise<void>,
) => (...args: A) => Promise<void>;

export function usage(message: string): CliFailure {
  return new CliFailure('E_CLI_USAGE', message, EXIT.usage);
}

export function idArg(value: unknown, what: string): string {
  if (!isValidId(value))
    throw usage(`${what} must match ^[a-z0-9][a-z0-9-]{0,63}$ (got ${JSON.stringify(value)})`);
  return value;
}

export function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value))
    throw usage(`${what} must be one of ${allowed.join(', ')}`);
  return value as T;
}

export function intArg(
  value: string | undefined,
  what: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw usage(`${what} must be an integer from ${min} to ${max}`);
  return n;
}

/** `30s`, `15m`, `2h`, `7d` or plain seconds -> seconds. */
export function durationArg(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!m) throw usage(`${what} must look like 90, 30s, 15m, 2h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** `-1h`, `2026-11-30T12:00:00Z` or epoch ms -> epoch ms. */
export function timeArg(value: string | undefined, what: string, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const rel = /^-(\d+)([smhd])$/.exec(value.trim());
  if (rel)
    return now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d{10,}$/.test(value)) return Number(value);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw usage(`${what} must be a time (ISO 8601, epoch ms) or a relative time like -1h`);
  return t;
}

export function tagsArg(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const tags = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tags) idArg(t, 'tag');
  return tags;
}
