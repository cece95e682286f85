import type { Logger } from '@perch/shared';
import type { Store } from '../db/open';
import type { ControllerMetrics } from '../metrics';
import type { DeviceBus } from '../mqtt/bus';
import type { StoredEvent } from '../mqtt/ingest';
import type { WebhookDispatcher } from './webhooks';

export interface EventFanoutOptions {
  store: Store;
  bus: Pick<DeviceBus, 'publish'>;
  webhooks: WebhookDispatcher;
  metrics: ControllerMetrics;
  logger: Logger;
  /** The fleet topic (dynsec-acl.ts fleetEventsTopic). */
  fleetTopic: string;
}

/**
 * Takes the ingest's newly stored events (`onEventsStored`, called after each committed batch) off
 * its hot path: `accept` only queues, and one background loop re-publishes each event on the fleet
 * topic and queues its webhook deliveries (durably, in the webhook tables). A failure of either is
 * counted and logged with the event id, never silent.
 *
 * The hand-over is in memory: events committed by the ingest but not yet queued for webhooks when the
 * process dies are not delivered (they stay in the events table and the API). `stop()` drains the queue.
 */
export class EventFanout {
  private queue: StoredEvent[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly o: EventFanoutOptions) {}

  accept(events: ReadonlyArray<StoredEvent>): void {
    this.queue.push(...events);
    if (!this.running) {
      this.running = this.drain().finally(() => {
        this.running = undefined;
      });
    }
  }

  /** Resolves once everything accepted so far has been handled. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 500);
      const tags = await this.tagsOf(batch);
      for (const e of batch) {
        await this.publishFleet(e);
        try {
          await this.o.webhooks.publish({
            deviceId: e.deviceId,
            tags: tags.get(e.deviceId) ?? [],
            event: e.msg,
          });
        } catch {
          // Counted (enqueue_failure) and logged with the event id by the dispatcher.
        }
      }
    }
  }

  private async publishFleet(e: StoredEvent): Promise<void> {
    try {
      await this.o.bus.publish(this.o.fleetTopic, JSON.stringify({ ...e.msg, deviceId: e.deviceId }));
      this.o.metrics.fleetPublishes.inc({ result: 'ok' });
    } catch (err) {
      this.o.metrics.fleetPublishes.inc({ result: 'failed' });
      this.o.logger.warn('fleet topic publish failed', {
        code: 'E_BROKER_UNAVAILABLE',
        deviceId: e.deviceId,
        eventId: e.msg.id,
        err: String(err),
      });
    }
  }

  private async tagsOf(batch: StoredEvent[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const ids = [...new Set(batch.map((e) => e.deviceId))];
    try {
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await this.o.store.db
          .selectFrom('device_tags')
          .select(['device_id', 'tag'])
          .where('device_id', 'in', ids.slice(i, i + 500))
          .execute();
        for (const r of rows) out.set(r.device_id, [...(out.get(r.device_id) ?? []), r.tag]);
      }
    } catch (err) {
      this.o.logger.error('device tags could not be read: tag-filtered webhooks miss this batch', {
        err: String(err),
      });
    }
    return out;
  }
}
