import type { Selectable } from 'kysely';
import type { Store } from '../../db/open';
import type { WebhookDeliveryTable, WebhookSubscriptionTable } from '../../db/schema';
import type { Delivery, WebhookFilter, WebhookStore, WebhookSubscription } from './types';

const toSub = (r: Selectable<WebhookSubscriptionTable>): WebhookSubscription => ({
  id: r.id,
  url: r.url,
  secret: r.secret,
  filter: JSON.parse(r.filter) as WebhookFilter,
  enabled: Number(r.enabled) === 1,
  ...(r.description === null ? {} : { description: r.description }),
  createdAt: Number(r.created_at),
});

const toDelivery = (r: Selectable<WebhookDeliveryTable>): Delivery => ({
  id: r.id,
  subscriptionId: r.subscription_id,
  body: r.body,
  createdAt: Number(r.created_at),
  attempts: Number(r.attempts),
  nextAttemptAt: Number(r.next_attempt_at),
  status: r.status,
  ...(r.last_error === null ? {} : { lastError: r.last_error }),
  ...(r.last_status === null ? {} : { lastStatus: Number(r.last_status) }),
  ...(r.dead_at === null ? {} : { deadAt: Number(r.dead_at) }),
});

/**
 * The controller's webhook store: the tables of migration 0002 through kysely (portable SQL), so
 * subscriptions, queued deliveries and dead letters survive a restart and the dispatcher resumes.
 * Enqueueing is one transaction per event batch, so a crash leaves whole rows.
 */
export class KyselyWebhookStore implements WebhookStore {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  async addSubscription(s: WebhookSubscription): Promise<void> {
    await this.store.durable(async (tx) => {
      await tx
        .insertInto('webhook_subscriptions')
        .values({
          id: s.id,
          url: s.url,
          secret: s.secret,
          filter: JSON.stringify(s.filter),
          enabled: s.enabled ? 1 : 0,
          description: s.description ?? null,
          created_at: s.createdAt,
        })
        .execute();
    });
  }
  async getSubscription(id: string): Promise<WebhookSubscription | undefined> {
    const row = await this.db
      .selectFrom('webhook_subscriptions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toSub(row);
  }
  async listSubscriptions(): Promise<WebhookSubscription[]> {
    const rows = await this.db
      .selectFrom('webhook_subscriptions')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toSub);
  }
  async updateSubscription(
    id: string,
    patch: Partial<Omit<WebhookSubscription, 'id' | 'createdAt'>>,
  ): Promise<boolean> {
    const current = await this.getSubscription(id);
    if (!current) return false;
    const next = { ...current, ...patch };
    await this.db
      .updateTable('webhook_subscriptions')
      .set({
        url: next.url,
        secret: next.secret,
        filter: JSON.stringify(next.filter),
        enabled: next.enabled ? 1 : 0,
        description: next.description ?? null,
      })
      .where('id', '=', id)
      .execute();
    return true;
  }
  async deleteSubscription(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('webhook_subscriptions').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async addDeliveries(deliveries: Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.store.transaction(async (tx) => {
      for (let i = 0; i < deliveries.length; i += 100) {
        await tx
          .insertInto('webhook_deliveries')
          .values(
            deliveries.slice(i, i + 100).map((d) => ({
              id: d.id,
              subscription_id: d.subscriptionId,
              body: d.body,
              created_at: d.createdAt,
              attempts: d.attempts,
              next_attempt_at: d.nextAttemptAt,
              status: d.status,
              last_error: null,
              last_status: null,
              dead_at: null,
            })),
          )
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }
    });
  }
  async dueDeliveries(now: number, limit: number): Promise<Delivery[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .orderBy('created_at')
      .limit(limit)
      .execute();
    return rows.map(toDelivery);
  }
  async nextDueAt(): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }
  async updateDelivery(
    id: string,
    p: Pick<Delivery, 'attempts' | 'nextAttemptAt' | 'status'> &
      Partial<Pick<Delivery, 'lastError' | 'lastStatus' | 'deadAt'>>,
  ): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({
        attempts: p.attempts,
        next_attempt_at: p.nextAttemptAt,
        status: p.status,
        last_error: p.lastError ?? null,
        last_status: p.lastStatus ?? null,
        dead_at: p.deadAt ?? null,
      })
      .where('id', '=', id)
      .execute();
  }
  async deleteDelivery(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('webhook_deliveries').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
  async getDelivery(id: string): Promise<Delivery | undefined> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toDelivery(row);
  }
  async listDeadLetters(limit = 100, subscriptionId?: string): Promise<Delivery[]> {
    let q = this.db.selectFrom('webhook_deliveries').selectAll().where('status', '=', 'dead');
    if (subscriptionId !== undefined) q = q.where('subscription_id', '=', subscriptionId);
    const rows = await q.orderBy('dead_at', 'desc').orderBy('id').limit(limit).execute();
    return rows.map(toDelivery);
  }
  async countPending(): Promise<number> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
