import type { Delivery, WebhookStore, WebhookSubscription } from './types';

/** In-memory store, for tests and for a controller that accepts losing queued webhooks on restart. */
export class MemoryWebhookStore implements WebhookStore {
  private readonly subs = new Map<string, WebhookSubscription>();
  private readonly deliveries = new Map<string, Delivery>();

  async addSubscription(sub: WebhookSubscription): Promise<void> {
    if (this.subs.has(sub.id)) throw new Error(`subscription ${sub.id} exists`);
    this.subs.set(sub.id, structuredClone(sub));
  }
  async getSubscription(id: string): Promise<WebhookSubscription | undefined> {
    const s = this.subs.get(id);
    return s && structuredClone(s);
  }
  async listSubscriptions(): Promise<WebhookSubscription[]> {
    return [...this.subs.values()].map((s) => structuredClone(s));
  }
  async updateSubscription(
    id: string,
    patch: Partial<Omit<WebhookSubscription, 'id' | 'createdAt'>>,
  ): Promise<boolean> {
    const s = this.subs.get(id);
    if (!s) return false;
    this.subs.set(id, { ...s, ...structuredClone(patch) });
    return true;
  }
  async deleteSubscription(id: string): Promise<boolean> {
    return this.subs.delete(id);
  }

  async addDeliveries(deliveries: Delivery[]): Promise<void> {
    for (const d of deliveries) if (!this.deliveries.has(d.id)) this.deliveries.set(d.id, { ...d });
  }
  async dueDeliveries(now: number, limit: number): Promise<Delivery[]> {
    return [...this.deliveries.values()]
      .filter((d) => d.status === 'pending' && d.nextAttemptAt <= now)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdAt - b.createdAt)
      .slice(0, limit)
      .map((d) => ({ ...d }));
  }
  async nextDueAt(): Promise<number | undefined> {
    let next: number | undefined;
    for (const d of this.deliveries.values()) {
      if (d.status === 'pending' && (next === undefined || d.nextAttemptAt < next)) next = d.nextAttemptAt;
    }
    return next;
  }
  async updateDelivery(id: string, patch: Partial<Delivery>): Promise<void> {
    const d = this.deliveries.get(id);
    if (d) this.deliveries.set(id, { ...d, ...patch });
  }
  async deleteDelivery(id: string): Promise<boolean> {
    return this.deliveries.delete(id);
  }
  async getDelivery(id: string): Promise<Delivery | undefined> {
    const d = this.deliveries.get(id);
    return d && { ...d };
  }
  async listDeadLetters(limit = 100, subscriptionId?: string): Promise<Delivery[]> {
    return [...this.deliveries.values()]
      .filter(
        (d) => d.status === 'dead' && (subscriptionId === undefined || d.subscriptionId === subscriptionId),
      )
      .sort((a, b) => (b.deadAt ?? 0) - (a.deadAt ?? 0))
      .slice(0, limit)
      .map((d) => ({ ...d }));
  }
  async countPending(): Promise<number> {
    return [...this.deliveries.values()].filter((d) => d.status === 'pending').length;
  }
}
