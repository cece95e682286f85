import {
  decodeMessage,
  parseTopic,
  type Clock,
  type EventMessage,
  type Logger,
  type ReportedState,
  type StatusMessage,
  type TelemetryMessage,
} from '@perch/shared';
import type { Store, Tx } from '../db/open';
import type { InboundMessage } from './bus';

/**
 * Rows per prepared multi-row telemetry insert, largest first (6 parameters each: 1536 at most, far below
 * SQLite's 32766). Measured on 40 000 rows: 64-row statements 5.3 us/row, 256-row 4.0 us/row.
 */
const TELEMETRY_CHUNKS = [256, 64, 16, 4, 1] as const;
const telemetryInsertSql = (rows: number): string =>
  `INSERT INTO telemetry (msg_id, device_id, ts, received_at, metrics, info) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT (device_id, msg_id) DO NOTHING`;
/** How stale `devices.last_seen_at` may get while a device keeps sending. */
const LAST_SEEN_WRITE_MS = 5000;

function allFinite(metrics: Record<string, number>): boolean {
  for (const key in metrics) if (!Number.isFinite(metrics[key])) return false;
  return true;
}

type Accepted =
  | { kind: 'telemetry'; deviceId: string; msg: TelemetryMessage }
  | { kind: 'events'; deviceId: string; msg: EventMessage }
  | { kind: 'status'; deviceId: string; msg: StatusMessage }
  | { kind: 'reported'; deviceId: string; msg: ReportedState }
  | { kind: 'cmd-result'; deviceId: string };

/** The two counters the ingest reports to (prom-client counters, or a recorder in the ingest worker). */
export interface CounterLike {
  inc(labels: Record<string, string>, value?: number): void;
}
export interface IngestMetrics {
  ingestMessages: CounterLike;
  ingestRejects: CounterLike;
}

/** What the MQTT side hands messages to: the in-thread `Ingest` or the `IngestWorker` proxy. */
export interface IngestSink {
  accept(message: InboundMessage): void;
  flush(): Promise<void>;
  stop(): Promise<void>;
  /** Messages fully handled so far (stored, duplicate or rejected). */
  readonly processed: number;
}

export interface IngestOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics: IngestMetrics;
  topicPrefix: string;
  maxPayloadBytes: number;
  /**
   * Most messages per transaction (default 4000). Under load the flush delay usually cuts the batch
   * first; bigger transactions rewrite each B-tree page fewer times per row. 4000 rows hold the event
   * loop for ~15 ms.
   */
  batchSize?: number;
  /** Longest a message waits in memory before its batch is written (default 50 ms). */
  flushDelayMs?: number;
  /** Queue bound: beyond it new messages are rejected (and counted) instead of growing memory. */
  maxQueue?: number;
  /**
   * Called after each committed batch with the events that were new (duplicates left out), in arrival
   * order. Integrations (fleet re-publication, webhooks) hang off this; it must not throw or block.
   */
  onEventsStored?: (events: ReadonlyArray<StoredEvent>) => void;
}

/** An event that the ingest has just stored for the first time. */
export interface StoredEvent {
  deviceId: string;
  msg: EventMessage;
}

/**
 * MQTT ingest: decode with the shared decoder, check that the sender owns the topic, then write in
 * batched transactions. Deduplication is the primary key (device, message id) with ON CONFLICT DO
 * NOTHING, so redeliveries store nothing twice whatever the timing.
 */
export class Ingest implements IngestSink {
  private queue: Accepted[] = [];
  private timer: ReturnType<Clock['setTimeout']> | undefined;
  private flushing: Promise<void> | undefined;
  private readonly batchSize: number;
  private readonly flushDelayMs: number;
  private readonly maxQueue: number;
  private stopped = false;
  private readonly lastSeenWritten = new Map<string, number>();
  /** Count of messages fully processed (stored, duplicate or rejected), for tests and the bench. */
  processed = 0;

  constructor(private readonly o: IngestOptions) {
    this.batchSize = o.batchSize ?? 4000;
    this.flushDelayMs = o.flushDelayMs ?? 50;
    this.maxQueue = o.maxQueue ?? 50_000;
  }

  private reject(code: string): void {
    this.o.metrics.ingestRejects.inc({ code });
    this.processed++;
  }

  /** Never throws: a bad message is counted and dropped. */
  accept(message: InboundMessage): void {
    try {
      this.acceptUnsafe(message);
    } catch (err) {
      this.o.logger.error('ingest failed on a message', { err: String(err) });
      this.reject('E_INTERNAL');
    }
  }

  private acceptUnsafe(message: InboundMessage): void {
    if (this.stopped) return;
    const topic = parseTopic(message.topic, this.o.topicPrefix);
    if (!topic.ok) return this.reject(topic.error.code);
    const { kind, deviceId } = topic.value;
    if (message.senderId !== undefined && message.senderId !== deviceId)
      return this.reject('E_MQTT_SENDER_MISMATCH');
    if (this.queue.length >= this.maxQueue) return this.reject('E_PAYLOAD_TOO_LARGE');
    const opts = { maxBytes: this.o.maxPayloadBytes };
    let accepted: Accepted;
    switch (kind) {
      case 'telemetry': {
        const r = decodeMessage('telemetry', message.payload, opts);
        if (!r.ok) return this.reject(r.error.code);
        if (!allFinite(r.value.metrics)) return this.reject('E_SCHEMA');
        accepted = { kind, deviceId, msg: r.value };
        break;
      }
      case 'events': {
        const r = decodeMessage('events', message.payload, opts);
        if (!r.ok) return this.reject(r.error.code);
        accepted = { kind, deviceId, msg: r.value };
        break;
      }
      case 'status': {
        if (message.payload.length === 0) return this.reject('E_PAYLOAD_JSON'); // retained clear
        const r = decodeMessage('status', message.payload, opts);
        if (!r.ok) return this.reject(r.error.code);
        accepted = { kind, deviceId, msg: r.value };
        break;
      }
      case 'reported': {
        const r = decodeMessage('reported', message.payload, opts);
        if (!r.ok) return this.reject(r.error.code);
        accepted = { kind, deviceId, msg: r.value };
        break;
      }
      case 'cmd-result': {
        const r = decodeMessage('cmd-result', message.payload, opts);
        if (!r.ok) return this.reject(r.error.code);
        accepted = { kind, deviceId };
        break;
      }
      default:
        // desired and cmd are published by the controller; a device sending them is refused by the ACL.
        return this.reject('E_TOPIC_UNKNOWN');
    }
    this.queue.push(accepted);
    if (this.queue.length >= this.batchSize) this.kick(0);
    else this.kick(this.flushDelayMs);
  }

  private kick(delay: number): void {
    if (this.flushing) return; // the running flush loops until the queue is empty
    if (delay === 0) {
      if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.flushing = this.drain().finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.kick(this.flushDelayMs);
      });
      return;
    }
    this.timer ??= this.o.clock.setTimeout(() => {
      this.timer = undefined;
      this.kick(0);
    }, delay);
  }

  /** Writes everything queued now; resolves when it is committed. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.queue.length > 0) await this.drain();
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchSize);
      const fresh: StoredEvent[] = [];
      try {
        await this.o.store.transaction((tx) => this.write(tx, batch, fresh));
      } catch (err) {
        // A batch that cannot be written is dropped and counted rather than retried forever.
        this.o.logger.error('ingest batch failed', { size: batch.length, err: String(err) });
        this.o.metrics.ingestRejects.inc({ code: 'E_INTERNAL' }, batch.length);
        this.processed += batch.length;
        continue;
      }
      if (fresh.length > 0 && this.o.onEventsStored) {
        try {
          this.o.onEventsStored(fresh);
        } catch (err) {
          this.o.logger.error('event listener failed', { err: String(err) });
        }
      }
    }
  }

  private async write(tx: Tx, batch: Accepted[], fresh: StoredEvent[]): Promise<void> {
    const now = this.o.clock.now();
    const ids = [...new Set(batch.map((b) => b.deviceId))];
    const known = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await tx
        .selectFrom('devices')
        .select('id')
        .where('id', 'in', ids.slice(i, i + 500))
        .where('revoked_at', 'is', null)
        .execute();
      for (const r of rows) known.add(r.id);
    }
    const seen = new Map<string, boolean | undefined>();
    const telemetry: Array<{ deviceId: string; msg: TelemetryMessage }> = [];
    const events: Array<{ deviceId: string; msg: EventMessage }> = [];
    for (const item of batch) {
      if (!known.has(item.deviceId)) {
        this.reject('E_MQTT_UNKNOWN_DEVICE');
        continue;
      }
      if (!seen.has(item.deviceId)) seen.set(item.deviceId, undefined);
      switch (item.kind) {
        case 'telemetry':
          telemetry.push(item);
          continue;
        case 'events':
          events.push(item);
          continue;
        case 'status':
          seen.set(item.deviceId, item.msg.state === 'online');
          break;
        case 'reported':
          await tx
            .updateTable('devices')
            .set({ reported: JSON.stringify(item.msg), reported_at: now })
            .where('id', '=', item.deviceId)
            .execute();
          break;
        case 'cmd-result':
          break;
      }
      this.processed++;
      this.o.metrics.ingestMessages.inc({ kind: item.kind });
    }
    if (telemetry.length > 0) await this.writeTelemetry(tx, telemetry, now);
    if (events.length > 0) await this.writeEvents(tx, events, now, fresh);
    for (const [deviceId, online] of seen) {
      // last_seen is written at most every LAST_SEEN_WRITE_MS per device; status changes always.
      if (
        online === undefined &&
        now - (this.lastSeenWritten.get(deviceId) ?? -Infinity) < LAST_SEEN_WRITE_MS
      )
        continue;
      this.lastSeenWritten.set(deviceId, now);
      const set =
        online === undefined ? { last_seen_at: now } : { last_seen_at: now, online: online ? 1 : 0 };
      await tx.updateTable('devices').set(set).where('id', '=', deviceId).execute();
    }
  }

  private count(kind: 'telemetry' | 'events', total: number, stored: number): void {
    this.processed += total;
    if (stored > 0) this.o.metrics.ingestMessages.inc({ kind }, stored);
    if (total > stored) this.o.metrics.ingestRejects.inc({ code: 'E_MQTT_DUPLICATE' }, total - stored);
  }

  /**
   * Multi-row INSERT ... ON CONFLICT DO NOTHING: the rows it changed are the new messages (SQLite's
   * `changes`, PostgreSQL's RETURNING). On SQLite the statements are prepared once per size.
   */
  private async writeTelemetry(
    tx: Tx,
    items: Array<{ deviceId: string; msg: TelemetryMessage }>,
    now: number,
  ): Promise<void> {
    const prepared = this.o.store.prepared;
    let stored = 0;
    if (prepared) {
      // Multi-row statements of falling sizes, each prepared once: a 1000-message batch takes 7 native
      // calls instead of 55 with a single 64-row size. No RETURNING: its result rows cost more than the
      // count needs.
      let i = 0;
      for (const size of TELEMETRY_CHUNKS) {
        if (items.length - i < size) continue;
        const stmt = prepared(telemetryInsertSql(size));
        const params: unknown[] = new Array<unknown>(size * 6);
        for (; i + size <= items.length; i += size) {
          for (let k = 0, p = 0; k < size; k++) {
            const { deviceId, msg } = items[i + k]!;
            params[p++] = msg.id;
            params[p++] = deviceId;
            params[p++] = msg.ts;
            params[p++] = now;
            params[p++] = JSON.stringify(msg.metrics);
            params[p++] = msg.info === undefined ? null : JSON.stringify(msg.info);
          }
          stored += stmt.run(...params).changes;
        }
      }
    } else {
      for (let i = 0; i < items.length; i += 400) {
        const rows = await tx
          .insertInto('telemetry')
          .values(
            items.slice(i, i + 400).map(({ deviceId, msg }) => ({
              msg_id: msg.id,
              device_id: deviceId,
              ts: msg.ts,
              received_at: now,
              metrics: JSON.stringify(msg.metrics),
              info: msg.info === undefined ? null : JSON.stringify(msg.info),
            })),
          )
          .onConflict((oc) => oc.columns(['device_id', 'msg_id']).doNothing())
          .returning('msg_id')
          .execute();
        stored += rows.length;
      }
    }
    this.count('telemetry', items.length, stored);
  }

  private async writeEvents(
    tx: Tx,
    items: Array<{ deviceId: string; msg: EventMessage }>,
    now: number,
    fresh: StoredEvent[],
  ): Promise<void> {
    let stored = 0;
    for (let i = 0; i < items.length; i += 200) {
      const chunk = items.slice(i, i + 200);
      const rows = await tx
        .insertInto('events')
        .values(
          chunk.map(({ deviceId, msg }) => ({
            msg_id: msg.id,
            device_id: deviceId,
            ts: msg.ts,
            event_id: msg.eventId,
            phase: msg.phase,
            pipeline: msg.pipeline,
            label: msg.label,
            score: msg.score,
            body: JSON.stringify(msg),
            received_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(['device_id', 'msg_id']).doNothing())
        .returning('msg_id')
        .execute();
      stored += rows.length;
      if (this.o.onEventsStored && rows.length > 0) {
        // One returned row per newly stored (device, id): a redelivery inside the same chunk is left out.
        const ids = new Set(rows.map((r) => r.msg_id));
        for (const item of chunk) if (ids.delete(item.msg.id)) fresh.push(item);
      }
    }
    this.count('events', items.length, stored);
  }

  /** Retention: removes telemetry older than `before` (events: retention.ts), device by device on the index. */
  static async trim(store: Store, before: number): Promise<number> {
    const devices = await store.db.selectFrom('devices').select('id').execute();
    let removed = 0;
    for (const { id } of devices) {
      const r = await store.db
        .deleteFrom('telemetry')
        .where('device_id', '=', id)
        .where('ts', '<', before)
        .executeTakeFirst();
      removed += Number(r.numDeletedRows);
    }
    return removed;
  }
}
