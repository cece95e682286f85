import { randomUUID } from 'node:crypto';
import type { Db, Tx } from './db/open';

export async function audit(
  db: Db | Tx,
  now: number,
  entry: { actor: string; action: string; target: string; details?: unknown },
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      id: randomUUID(),
      ts: now,
      actor: entry.actor,
      action: entry.action,
      target: entry.target,
      details: entry.details === undefined ? null : JSON.stringify(entry.details),
    })
    .execute();
}
