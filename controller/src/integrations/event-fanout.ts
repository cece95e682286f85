import type { Clock, EventMessage, Logger } from '@perch/shared';
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
  clock: Clock;
  /** The fleet topic (dynsec-acl.ts fleetEventsTopic). */
  fleetTopic: string;
  /** Least time between two cursor writes (default 1 s); the recovery window after a crash. */
  cursorIntervalMs?: number;
}

const CURSOR = 'webhooks';
const PAGE = 500;

/**
 * Takes the ingest's newly stored events (`onEventsStored`, called after each committed batch) off
 * its hot path: `accept` only queues, and one background loop re-publishes each event on the fleet
 * topic and queues its webhook deliveries (durably, in the webhook tables). A failure of either is
 * counted and logged with the event id, never silent.
 *
 * The hand-over from the ingest is in memory, so a durable cursor (`integration_cursors`, a
 * `received_at` position) records how far it got: every event stored before the position has been
 * queued for webhooks. `recover()` at start queues the events stored since (delivery ids are derived
 * from the event, so one still queued is not queued twice; one already delivered may be sent again
 * with the same id). A failed queueing stops the cursor for the rest of the run, so the next start
 * retries it. The fleet topic is live only: events are not re-published on recovery.
 */
export class EventFanout {
  private queue: StoredEvent[][] = [];
  private running: Promise<void> | undefined;
  /** Set after a webhook queueing failure: the cursor stays put until the next start. */
  private stuck = false;
  private lastCursorWrite = 0;

  constructor(private readonly o: EventFanoutOptions) {}

  accept(events: ReadonlyArray<StoredEvent>): void {
    this.queue.push([...events]);
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

  /**
   * Queues webhooks for events stored since the cursor (a crash between the ingest's commit and the
   * hand-over). Call before the broker starts. The first start creates the cursor after the newest
   * stored event: history is not replayed. Returns how many events were looked at.
   */
  async recover(): Promise<number> {
    const { db } = this.o.store;
    const row = await db
      .selectFrom('integration_cursors')
      .select('position')
      .where('name', '=', CURSOR)
      .executeTakeFirst();
    if (!row) {
      await db
        .insertInto('integration_cursors')
        .values({ name: CURSOR, position: (await this.newest()) + 1 })
        .execute();
      return 0;
    }
    let seen = 0;
    let after: { at: number; device: string; msg: string } | undefined;
    for (;;) {
      let q = db
        .selectFrom('events')
        .select(['device_id', 'msg_id', 'body', 'received_at'])
        .where('received_at', '>=', Number(row.position));
      if (after) {
        const a = after;
        q = q.where((eb) =>
          eb.or([
            eb('received_at', '>', a.at),
            eb.and([
              eb('received_at', '=', a.at),
              eb.or([
                eb('device_id', '>', a.device),
                eb.and([eb('device_id', '=', a.device), eb('msg_id', '>', a.msg)]),
              ]),
            ]),
          ]),
        );
      }
      const rows = await q
        .orderBy('received_at')
        .orderBy('device_id')
        .orderBy('msg_id')
        .limit(PAGE)
        .execute();
      if (rows.length === 0) break;
      const events: StoredEvent[] = [];
      for (const r of rows) {
        try {
          events.push({ deviceId: r.device_id, msg: JSON.parse(r.body) as EventMessage });
        } catch {
          this.o.logger.error('stored event is not JSON; not queued for webhooks', {
            deviceId: r.device_id,
            eventId: r.msg_id,
          });
        }
      }
      await this.queueWebhooks(events);
      seen += rows.length;
      const last = rows[rows.length - 1];
      if (!last) break;
      after = { at: Number(last.received_at), device: last.device_id, msg: last.msg_id };
    }
    if (seen > 0) this.o.logger.warn('queued webhooks for events stored before a crash', { events: seen });
    await this.advance((await this.newest()) + 1, true);
    return seen;
  }

  /** Drains the queue and, when nothing failed, moves the cursor past every stored event. */
  async close(): Promise<void> {
    await this.idle();
    await this.advance((await this.newest()) + 1, true);
  }

  private async newest(): Promise<number> {
    const row = await this.o.store.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('received_at').as('at'))
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? 0 : Number(row.at);
  }

  private async advance(position: number, force = false): Promise<void> {
    if (this.stuck) return;
    const now = this.o.clock.now();
    if (!force && now - this.lastCursorWrite < (this.o.cursorIntervalMs ?? 1000)) return;
    this.lastCursorWrite = now;
    try {
      await this.o.store.db
        .updateTable('integration_cursors')
        .set({ position })
        .where('name', '=', CURSOR)
        .where('position', '<', position)
        .execute();
    } catch (err) {
      this.o.logger.warn('integration cursor not saved', { err: String(err) });
    }
  }

  private async drain(): Promise<void> {
    for (let batch = this.queue.shift(); batch; batch = this.queue.shift()) {
      for (const e of batch) await this.publishFleet(e);
      await this.queueWebhooks(batch);
      const first = batch[0];
      if (first && !this.stuck) {
        // Every event of one ingest batch carries the same received_at; all before it are handed over.
        const row = await this.o.store.db
          .selectFrom('events')
          .select('received_at')
          .where('device_id', '=', first.deviceId)
          .where('msg_id', '=', first.msg.id)
          .executeTakeFirst()
          .catch(() => undefined);
        if (row) await this.advance(Number(row.received_at));
      }
    }
  }

  private async queueWebhooks(events: StoredEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += PAGE) {
      const chunk = events.slice(i, i + PAGE);
      const tags = await this.tagsOf(chunk);
      for (const e of chunk) {
        try {
          await this.o.webhooks.publish({
            deviceId: e.deviceId,
            key: `${e.deviceId}/${e.msg.id}`,
            tags: tags.get(e.deviceId) ?? [],
            event: e.msg,
          });
        } catch {
          // Counted (enqueue_failure) and logged with the event id by the dispatcher; the next
          // start queues it again from the cursor.
          this.stuck = true;
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
      for (let i = 0; i < ids.length; i += PAGE) {
        const rows = await this.o.store.db
          .selectFrom('device_tags')
          .select(['device_id', 'tag'])
          .where('device_id', 'in', ids.slice(i, i + PAGE))
          .execute();
        for (const r of rows) out.set(r.device_id, [...(out.get(r.device_id) ?? []), r.tag]);
      }
    } catch (err) {
      // Without tags a tag-filtered subscription would miss these events: retry from the cursor.
      this.stuck = true;
      this.o.logger.error('device tags could not be read; these events are queued again at the next start', {
        err: String(err),
      });
    }
    return out;
  }
}
