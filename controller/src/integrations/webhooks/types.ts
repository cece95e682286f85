import type { EventMessage } from '@perch/shared';

/** Which events a subscription wants. Each given list must match (any of its entries); absent = all. */
export interface WebhookFilter {
  devices?: string[];
  /** Device tags (resolved by the caller from the device registry). */
  tags?: string[];
  labels?: string[];
  phases?: Array<EventMessage['phase']>;
}

export interface WebhookSubscription {
  id: string;
  url: string;
  /** HMAC key; shown once on creation. */
  secret: string;
  filter: WebhookFilter;
  enabled: boolean;
  description?: string;
  createdAt: number;
}

/** What the dispatcher is handed for each event on perch/v1/devices/{id}/events. */
export interface WebhookEventInput {
  deviceId: string;
  /**
   * Stable identity of the event (e.g. `<deviceId>/<message id>`): makes delivery ids deterministic,
   * so queueing the same event twice does not deliver it twice while queued.
   */
  key?: string;
  tags?: readonly string[];
  event: EventMessage;
}

/** The JSON body receivers get. `id` is stable across retries: receivers deduplicate on it. */
export interface WebhookBody {
  id: string;
  type: 'perch.event';
  createdAt: string;
  deviceId: string;
  event: EventMessage;
}

export interface Delivery {
  id: string;
  subscriptionId: string;
  /** The exact body, serialised once so every retry sends (and signs) the same bytes. */
  body: string;
  createdAt: number;
  attempts: number;
  nextAttemptAt: number;
  status: 'pending' | 'dead';
  lastError?: string;
  lastStatus?: number;
  deadAt?: number;
}

/**
 * Persistence the dispatcher needs. Async so that a kysely/PostgreSQL implementation fits;
 * memory-store.ts (tests) and kysely-store.ts (the controller database) implement it.
 */
export interface WebhookStore {
  addSubscription(sub: WebhookSubscription): Promise<void>;
  getSubscription(id: string): Promise<WebhookSubscription | undefined>;
  listSubscriptions(): Promise<WebhookSubscription[]>;
  updateSubscription(
    id: string,
    patch: Partial<Omit<WebhookSubscription, 'id' | 'createdAt'>>,
  ): Promise<boolean>;
  deleteSubscription(id: string): Promise<boolean>;

  /** Queues deliveries; an id already queued (or dead) is left as it is. */
  addDeliveries(deliveries: Delivery[]): Promise<void>;
  /** Pending deliveries due at `now`, oldest first. */
  dueDeliveries(now: number, limit: number): Promise<Delivery[]>;
  /** Earliest nextAttemptAt of a pending delivery. */
  nextDueAt(): Promise<number | undefined>;
  /** Records a failed attempt (still pending, or dead when `status` says so). */
  updateDelivery(
    id: string,
    patch: Pick<Delivery, 'attempts' | 'nextAttemptAt' | 'status'> &
      Partial<Pick<Delivery, 'lastError' | 'lastStatus' | 'deadAt'>>,
  ): Promise<void>;
  /** Removes a delivered (or discarded) delivery. */
  deleteDelivery(id: string): Promise<boolean>;
  getDelivery(id: string): Promise<Delivery | undefined>;
  /** Newest first; only one subscription's when `subscriptionId` is given. */
  listDeadLetters(limit?: number, subscriptionId?: string): Promise<Delivery[]>;
  countPending(): Promise<number>;
}
