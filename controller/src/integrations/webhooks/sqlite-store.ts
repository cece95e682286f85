import type { Database } from 'better-sqlite3';
import type { Delivery, WebhookFilter, WebhookStore, WebhookSubscription } from './types';

/**
 * The tables this store needs. Kept here (CREATE ... IF NOT EXISTS) so the store works on its own;
 * the controller's kysely migrations can take these statements over verbatim.
 */
export const WEBHOOK_SCHEMA_SQL = [
  `CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    filter TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    description TEXT,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'dead')),
    last_error TEXT,
    last_status INTEGER,
    dead_at INTEGER
  )`,
  `CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)`,
];

interface SubRow {
  id: string;
  url: string;
  secret: string;
  filter: string;
  enabled: number;
  description: string | null;
  created_at: number;
}
interface DeliveryRow {
  id: string;
  subscription_id: string;
  body: string;
  created_at: number;
  attempts: number;
  next_attempt_at: number;
  status: 'pending' | 'dead';
  last_error: string | null;
  last_status: number | null;
  dead_at: number | null;
}

const toSub = (r: SubRow): WebhookSubscription => ({
  id: r.id,
  url: r.url,
  secret: r.secret,
  filter: JSON.parse(r.filter) as WebhookFilter,
  enabled: r.enabled === 1,
  ...(r.description === null ? {} : { description: r.description }),
  createdAt: r.created_at,
});

const toDelivery = (r: DeliveryRow): Delivery => ({
  id: r.id,
  subscriptionId: r.subscription_id,
  body: r.body,
  createdAt: r.created_at,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  status: r.status,
  ...(r.last_error === null ? {} : { lastError: r.last_error }),
  ...(r.last_status === null ? {} : { lastStatus: r.last_status }),
  ...(r.dead_at === null ? {} : { deadAt: r.dead_at }),
});

/** better-sqlite3 store. Each write is one statement or one transaction, so a crash leaves whole rows. */
export class SqliteWebhookStore implements WebhookStore {
  constructor(private readonly db: Database) {
    for (const sql of WEBHOOK_SCHEMA_SQL) db.prepare(sql).run();
  }

  async addSubscription(s: WebhookSubscription): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO webhook_subscriptions (id, url, secret, filter, enabled, description, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        s.id,
        s.url,
        s.secret,
        JSON.stringify(s.filter),
        s.enabled ? 1 : 0,
        s.description ?? null,
        s.createdAt,
      );
  }
  async getSubscription(id: string): Promise<WebhookSubscription | undefined> {
    const row = this.db.prepare('SELECT * FROM webhook_subscriptions WHERE id = ?').get(id) as
      SubRow | undefined;
    return row && toSub(row);
  }
  async listSubscriptions(): Promise<WebhookSubscription[]> {
    const rows = this.db
      .prepare('SELECT * FROM webhook_subscriptions ORDER BY created_at, id')
      .all() as SubRow[];
    return rows.map(toSub);
  }
  async updateSubscription(
    id: string,
    patch: Partial<Omit<WebhookSubscription, 'id' | 'createdAt'>>,
  ): Promise<boolean> {
    const current = await this.getSubscription(id);
    if (!current) return false;
    const next = { ...current, ...patch };
    this.db
      .prepare(
        'UPDATE webhook_subscriptions SET url = ?, secret = ?, filter = ?, enabled = ?, description = ? WHERE id = ?',
      )
      .run(
        next.url,
        next.secret,
        JSON.stringify(next.filter),
        next.enabled ? 1 : 0,
        next.description ?? null,
        id,
      );
    return true;
  }
  async deleteSubscription(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM webhook_subscriptions WHERE id = ?').run(id).changes > 0;
  }

  async addDeliveries(deliveries: Delivery[]): Promise<void> {
    const insert = this.db.prepare(
      `INSERT INTO webhook_deliveries (id, subscription_id, body, created_at, attempts, next_attempt_at, status)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    );
    this.db.transaction((list: Delivery[]) => {
      for (const d of list)
        insert.run(d.id, d.subscriptionId, d.body, d.createdAt, d.attempts, d.nextAttemptAt, d.status);
    })(deliveries);
  }
  async dueDeliveries(now: number, limit: number): Promise<Delivery[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at, created_at LIMIT ?`,
      )
      .all(now, limit) as DeliveryRow[];
    return rows.map(toDelivery);
  }
  async nextDueAt(): Promise<number | undefined> {
    const row = this.db
      .prepare(`SELECT MIN(next_attempt_at) AS at FROM webhook_deliveries WHERE status = 'pending'`)
      .get() as { at: number | null };
    return row.at ?? undefined;
  }
  async updateDelivery(
    id: string,
    p: Pick<Delivery, 'attempts' | 'nextAttemptAt' | 'status'> &
      Partial<Pick<Delivery, 'lastError' | 'lastStatus' | 'deadAt'>>,
  ): Promise<void> {
    this.db
      .prepare(
        `UPDATE webhook_deliveries SET attempts = ?, next_attempt_at = ?, status = ?, last_error = ?,
         last_status = ?, dead_at = ? WHERE id = ?`,
      )
      .run(
        p.attempts,
        p.nextAttemptAt,
        p.status,
        p.lastError ?? null,
        p.lastStatus ?? null,
        p.deadAt ?? null,
        id,
      );
  }
  async deleteDelivery(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM webhook_deliveries WHERE id = ?').run(id).changes > 0;
  }
  async getDelivery(id: string): Promise<Delivery | undefined> {
    const row = this.db.prepare('SELECT * FROM webhook_deliveries WHERE id = ?').get(id) as
      DeliveryRow | undefined;
    return row && toDelivery(row);
  }
  async listDeadLetters(limit = 100, subscriptionId?: string): Promise<Delivery[]> {
    const rows = (
      subscriptionId === undefined
        ? this.db
            .prepare(`SELECT * FROM webhook_deliveries WHERE status = 'dead' ORDER BY dead_at DESC LIMIT ?`)
            .all(limit)
        : this.db
            .prepare(
              `SELECT * FROM webhook_deliveries WHERE status = 'dead' AND subscription_id = ? ORDER BY dead_at DESC LIMIT ?`,
            )
            .all(subscriptionId, limit)
    ) as DeliveryRow[];
    return rows.map(toDelivery);
  }
  async countPending(): Promise<number> {
    const row = this.db
      .prepare(`SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'`)
      .get() as { n: number };
    return row.n;
  }
}
