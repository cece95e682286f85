import type { Logger } from '@perch/shared';
import type { Store } from './db/open';
import { Ingest } from './mqtt/ingest';

const DAY_MS = 86_400_000;

export interface RetentionSettings {
  telemetryDays: number;
  eventsDays: number;
  auditDays: number;
}

export interface RetentionResult {
  telemetry: number;
  events: number;
  audit: number;
}

/**
 * Events older than `before` by the controller's `received_at` (not the device's `ts`: a device clock
 * that is wrong, e.g. a Pi without RTC, cannot get its events dropped early or kept forever).
 * Deleted one day of `received_at` at a time on the `events_received_at` index, so a first run over a
 * large backlog is many short statements instead of one long write lock.
 */
export async function trimEvents(store: Store, before: number): Promise<number> {
  const oldest = await store.db
    .selectFrom('events')
    .select((eb) => eb.fn.min('received_at').as('min'))
    .executeTakeFirst();
  if (oldest?.min === null || oldest?.min === undefined) return 0;
  let removed = 0;
  for (let lo = Number(oldest.min); lo < before; lo += DAY_MS) {
    const hi = Math.min(lo + DAY_MS, before);
    const r = await store.db
      .deleteFrom('events')
      .where('received_at', '>=', lo)
      .where('received_at', '<', hi)
      .executeTakeFirst();
    removed += Number(r.numDeletedRows);
  }
  return removed;
}

/** Audit entries older than `before`, on the `audit_log_ts` index. */
export async function trimAudit(store: Store, before: number): Promise<number> {
  const r = await store.db.deleteFrom('audit_log').where('ts', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** One retention pass (the cron job): each kind trimmed to its horizon from `now`, counts logged and returned. */
export async function runRetention(
  store: Store,
  now: number,
  settings: RetentionSettings,
  logger: Logger,
): Promise<RetentionResult> {
  const result: RetentionResult = {
    telemetry: await Ingest.trim(store, now - settings.telemetryDays * DAY_MS),
    events: await trimEvents(store, now - settings.eventsDays * DAY_MS),
    audit: await trimAudit(store, now - settings.auditDays * DAY_MS),
  };
  logger.info('retention pass done', { removed: result });
  return result;
}
