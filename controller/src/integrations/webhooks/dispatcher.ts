import { createHash, randomUUID } from 'node:crypto';
import { PerchError, systemClock, type Clock, type Logger, type TimerHandle } from '@perch/shared';
import { retryDelay, type BackoffOptions } from './backoff';
import { SIGNATURE_HEADER, signWebhook, WEBHOOK_ID_HEADER } from './signature';
import { matchesFilter, newSubscription } from './subscriptions';
import type { Delivery, WebhookBody, WebhookEventInput, WebhookStore, WebhookSubscription } from './types';

export interface WebhookDispatcherOptions {
  store: WebhookStore;
  logger: Logger;
  clock?: Clock;
  /** HTTP client seam (default: the global fetch). */
  fetch?: typeof fetch;
  random?: () => number;
  /** Attempts per delivery before it becomes a dead letter (default 8). */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** Per-attempt deadline (default 10 s). */
  timeoutMs?: number;
  /** Deliveries attempted at once (default 4). */
  concurrency?: number;
  /** Called for every counter increment (the controller feeds its Prometheus counters from it). */
  onCount?: (counter: keyof WebhookStats) => void;
}

export interface WebhookStats {
  /** Deliveries created (one per matching subscription and event). */
  enqueued: number;
  delivered: number;
  /** Attempts that failed and will be retried. */
  failedAttempts: number;
  deadLettered: number;
  /** Events that could not be queued (store failure); each is logged with the event id. */
  enqueueFailures: number;
}

const MAX_ERROR_TEXT = 500;

/**
 * A delivery's id (also the body's `id`, the receivers' deduplication key). With an event key the id
 * is derived from subscription and key, so queueing the same event again (recovery after a crash)
 * gives the same id: the store ignores it while queued, and a receiver that already has it can
 * deduplicate. Without a key it is random.
 */
function deliveryId(subscriptionId: string, input: WebhookEventInput): string {
  if (input.key === undefined) return `whd-${randomUUID()}`;
  const digest = createHash('sha256').update(`${subscriptionId}\n${input.key}`).digest('hex');
  return `whd-${digest.slice(0, 40)}`;
}

/**
 * Sends Perch events to webhook subscribers: one durable delivery per matching subscription,
 * signed per attempt (signature.ts), retried with capped exponential backoff and jitter on the
 * injected Clock, and moved to the dead-letter list after `maxAttempts`. Every failure is counted
 * in stats() and logged with its code; nothing is dropped without a trace. Runs are one flight at
 * a time: a trigger during a run schedules exactly one more run.
 */
export class WebhookDispatcher {
  private readonly clock: Clock;
  private readonly counters: WebhookStats = {
    enqueued: 0,
    delivered: 0,
    failedAttempts: 0,
    deadLettered: 0,
    enqueueFailures: 0,
  };
  private running: Promise<void> | undefined;
  private again = false;
  private timer: TimerHandle | undefined;
  private timerAt: number | undefined;
  private started = false;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.clock = options.clock ?? systemClock;
  }

  stats(): WebhookStats {
    return { ...this.counters };
  }

  private count(counter: keyof WebhookStats, n = 1): void {
    this.counters[counter] += n;
    if (this.options.onCount) for (let i = 0; i < n; i++) this.options.onCount(counter);
  }

  listSubscriptions(): Promise<WebhookSubscription[]> {
    return this.options.store.listSubscriptions();
  }

  getSubscription(id: string): Promise<WebhookSubscription | undefined> {
    return this.options.store.getSubscription(id);
  }

  /** Deliveries queued or waiting for a retry. */
  countPending(): Promise<number> {
    return this.options.store.countPending();
  }

  /** Resumes deliveries left pending by an earlier run (after a restart). */
  start(): void {
    this.started = true;
    this.trigger();
  }

  /** Stops scheduling; an attempt under way finishes. Resolves when idle. */
  async stop(): Promise<void> {
    this.started = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    await this.running;
  }

  /** Resolves once no run is under way (tests, graceful shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  // ---- subscriptions ------------------------------------------------------------------------

  async createSubscription(input: unknown): Promise<WebhookSubscription> {
    const sub = newSubscription(input, this.clock.now());
    await this.options.store.addSubscription(sub);
    return sub;
  }

  async deleteSubscription(id: string): Promise<void> {
    if (!(await this.options.store.deleteSubscription(id))) {
      throw new PerchError('E_WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`);
    }
  }

  // ---- events -------------------------------------------------------------------------------

  /** Queues the event for every enabled subscription whose filter matches; returns how many. */
  async publish(input: WebhookEventInput): Promise<number> {
    const now = this.clock.now();
    try {
      const subs = (await this.options.store.listSubscriptions()).filter(
        (s) => s.enabled && matchesFilter(s.filter, input),
      );
      if (subs.length === 0) return 0;
      const deliveries: Delivery[] = subs.map((s) => {
        const body: WebhookBody = {
          id: deliveryId(s.id, input),
          type: 'perch.event',
          createdAt: new Date(now).toISOString(),
          deviceId: input.deviceId,
          event: input.event,
        };
        return {
          id: body.id,
          subscriptionId: s.id,
          body: JSON.stringify(body),
          createdAt: now,
          attempts: 0,
          nextAttemptAt: now,
          status: 'pending',
        };
      });
      await this.options.store.addDeliveries(deliveries);
      this.count('enqueued', deliveries.length);
      this.trigger();
      return deliveries.length;
    } catch (err) {
      this.count('enqueueFailures');
      this.options.logger.error('webhook event could not be queued', {
        code: 'E_WEBHOOK_DELIVERY',
        eventId: input.event.id,
        deviceId: input.deviceId,
        err: (err as Error).message,
      });
      throw err;
    }
  }

  // ---- dead letters -------------------------------------------------------------------------

  listDeadLetters(limit?: number, subscriptionId?: string): Promise<Delivery[]> {
    return this.options.store.listDeadLetters(limit, subscriptionId);
  }

  /** Puts a dead letter back in the queue with a fresh attempt budget. */
  async redeliver(id: string): Promise<void> {
    const d = await this.options.store.getDelivery(id);
    if (!d || d.status !== 'dead') throw new PerchError('E_WEBHOOK_NOT_FOUND', `no dead letter ${id}`);
    await this.options.store.updateDelivery(id, {
      attempts: 0,
      nextAttemptAt: this.clock.now(),
      status: 'pending',
    });
    this.trigger();
  }

  /** Drops a dead letter an operator has handled. */
  async discardDeadLetter(id: string): Promise<void> {
    const d = await this.options.store.getDelivery(id);
    if (!d || d.status !== 'dead') throw new PerchError('E_WEBHOOK_NOT_FOUND', `no dead letter ${id}`);
    await this.options.store.deleteDelivery(id);
    this.options.logger.info('webhook dead letter discarded', { deliveryId: id });
  }

  // ---- the run loop -------------------------------------------------------------------------

  /** Asks for a run now; merged into the current one if a run is under way. */
  trigger(): void {
    if (!this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.trigger();
      }
    });
  }

  private async run(): Promise<void> {
    try {
      const limit = this.options.concurrency ?? 4;
      for (;;) {
        const due = await this.options.store.dueDeliveries(this.clock.now(), limit);
        if (due.length === 0 || !this.started) break;
        await Promise.all(due.map((d) => this.attempt(d)));
      }
      await this.scheduleNext();
    } catch (err) {
      // A store failure: log it and retry the run later rather than losing the queue.
      this.options.logger.error('webhook run failed', { err: (err as Error).message });
      this.schedule(this.clock.now() + retryDelay(1, this.options.backoff, this.options.random));
    }
  }

  private async scheduleNext(): Promise<void> {
    const next = await this.options.store.nextDueAt();
    if (next !== undefined) this.schedule(next);
  }

  private schedule(at: number): void {
    if (!this.started) return;
    if (this.timer && this.timerAt !== undefined && this.timerAt <= at) return;
    this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = undefined;
        this.trigger();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  private async attempt(d: Delivery): Promise<void> {
    const sub = await this.options.store.getSubscription(d.subscriptionId);
    const attempts = d.attempts + 1;
    const log = { deliveryId: d.id, subscriptionId: d.subscriptionId, attempt: attempts };
    if (!sub) {
      await this.deadLetter(d, attempts, 'subscription was deleted', undefined, log);
      return;
    }
    const { ok, status, error } = await this.send(sub, d);
    if (ok) {
      await this.options.store.deleteDelivery(d.id);
      this.count('delivered');
      this.options.logger.debug('webhook delivered', { ...log, status });
      return;
    }
    const maxAttempts = this.options.maxAttempts ?? 8;
    if (attempts >= maxAttempts) {
      await this.deadLetter(d, attempts, error, status, log);
      return;
    }
    const delay = retryDelay(attempts, this.options.backoff, this.options.random);
    await this.options.store.updateDelivery(d.id, {
      attempts,
      nextAttemptAt: this.clock.now() + delay,
      status: 'pending',
      lastError: error,
      ...(status === undefined ? {} : { lastStatus: status }),
    });
    this.count('failedAttempts');
    this.options.logger.warn('webhook delivery failed; will retry', {
      ...log,
      code: 'E_WEBHOOK_DELIVERY',
      status,
      error,
      retryInMs: delay,
    });
  }

  private async deadLetter(
    d: Delivery,
    attempts: number,
    error: string,
    status: number | undefined,
    log: Record<string, unknown>,
  ): Promise<void> {
    const now = this.clock.now();
    await this.options.store.updateDelivery(d.id, {
      attempts,
      nextAttemptAt: now,
      status: 'dead',
      lastError: error,
      deadAt: now,
      ...(status === undefined ? {} : { lastStatus: status }),
    });
    this.count('deadLettered');
    this.options.logger.error('webhook delivery moved to the dead-letter list', {
      ...log,
      code: 'E_WEBHOOK_DEAD_LETTER',
      status,
      error,
    });
  }

  private async send(
    sub: WebhookSubscription,
    d: Delivery,
  ): Promise<{ ok: boolean; status?: number; error: string }> {
    const controller = new AbortController();
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const timer = this.clock.setTimeout(
      () => controller.abort(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const res = await (this.options.fetch ?? fetch)(sub.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'perch-webhooks/1',
          [WEBHOOK_ID_HEADER]: d.id,
          [SIGNATURE_HEADER]: signWebhook(sub.secret, d.body, this.clock.now()),
        },
        body: d.body,
        redirect: 'manual',
        signal: controller.signal,
      });
      await res.body?.cancel().catch(() => undefined);
      const ok = res.status >= 200 && res.status < 300;
      return { ok, status: res.status, error: ok ? '' : `HTTP ${res.status}` };
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      const message = `${(err as Error).message}${cause ? `: ${cause}` : ''}`;
      return { ok: false, error: message.slice(0, MAX_ERROR_TEXT) };
    } finally {
      this.clock.clearTimeout(timer);
    }
  }
}
