import { PerchError, type Logger } from '@perch/shared';
import type { AgentDatabase } from './database';
import type { Counters } from './counters';

/** Kinds of message that go through the outbox. */
export type OutboxKind = 'events' | 'telemetry' | 'cmd-result' | 'reported';

export interface KindLimit {
  maxRows: number;
  maxBytes: number;
}

export interface OutboxOptions {
  /** Per kind; a full kind drops its own oldest messages. */
  limits: Record<OutboxKind, KindLimit>;
  /** Across all kinds; when exceeded the lowest priority goes first (routine telemetry before events). */
  totalMaxBytes: number;
}

export const DEFAULT_OUTBOX_OPTIONS: OutboxOptions = {
  limits: {
    events: { maxRows: 20_000, maxBytes: 32 * 1024 * 1024 },
    telemetry: { maxRows: 10_000, maxBytes: 16 * 1024 * 1024 },
    'cmd-result': { maxRows: 1_000, maxBytes: 2 * 1024 * 1024 },
    reported: { maxRows: 10, maxBytes: 2 * 1024 * 1024 },
  },
  totalMaxBytes: 48 * 1024 * 1024,
};

/** Events outrank command results, which outrank routine telemetry. */
const PRIORITY: Record<OutboxKind, number> = { events: 3, 'cmd-result': 2, reported: 2, telemetry: 1 };

export interface OutboxMessage {
  seq: number;
  kind: OutboxKind;
  topic: string;
  msgId: string;
  payload: Buffer;
}

interface Row {
  seq: number;
  kind: OutboxKind;
  topic: string;
  msg_id: string;
  payload: Buffer;
}

/**
 * The durable, bounded outbox. A message is a row until the broker acknowledges it (QoS 1 PUBACK), so
 * it survives broker outages and agent restarts; when a bound is hit the oldest message of the lowest
 * priority is deleted and counted in `dropped.<kind>` (persisted, reported in telemetry).
 */
export class Outbox {
  private readonly insert;
  private readonly deleteSeq;
  private readonly kindUsage;
  private readonly totalBytes;
  private readonly oldestOfKind;
  private readonly lowestPriorityOldest;
  private readonly bumpCounter;
  private readonly readCounter;
  private readonly listPending;
  private readonly countAll;

  constructor(
    private readonly db: AgentDatabase,
    private readonly options: OutboxOptions,
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly now: () => number,
  ) {
    this.insert = db.prepare(
      'INSERT INTO outbox (kind, topic, msg_id, payload, bytes, priority, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.deleteSeq = db.prepare('DELETE FROM outbox WHERE seq = ?');
    this.kindUsage = db.prepare<[string], { rows: number; bytes: number | null }>(
      'SELECT COUNT(*) AS rows, SUM(bytes) AS bytes FROM outbox WHERE kind = ?',
    );
    this.totalBytes = db.prepare<[], { bytes: number | null }>('SELECT SUM(bytes) AS bytes FROM outbox');
    this.oldestOfKind = db.prepare<[string], { seq: number; kind: OutboxKind }>(
      'SELECT seq, kind FROM outbox WHERE kind = ? ORDER BY seq LIMIT 1',
    );
    this.lowestPriorityOldest = db.prepare<[], { seq: number; kind: OutboxKind }>(
      'SELECT seq, kind FROM outbox ORDER BY priority ASC, seq ASC LIMIT 1',
    );
    this.bumpCounter = db.prepare(
      'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value',
    );
    this.readCounter = db.prepare<[string], { value: number }>('SELECT value FROM counters WHERE name = ?');
    this.listPending = db.prepare<[number], Row>(
      'SELECT seq, kind, topic, msg_id, payload FROM outbox ORDER BY priority DESC, seq ASC LIMIT ?',
    );
    this.countAll = db.prepare<[], { rows: number }>('SELECT COUNT(*) AS rows FROM outbox');
  }

  /**
   * Stores a message. Never throws: a database failure is logged, counted and reported as false, so a
   * full disk cannot take the pipelines down with it.
   */
  enqueue(kind: OutboxKind, topic: string, msgId: string, payload: string | Buffer): boolean {
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const limit = this.options.limits[kind];
    if (body.length > limit.maxBytes || body.length > this.options.totalMaxBytes) {
      this.countDropped(kind, 1);
      return false;
    }
    try {
      this.db.transaction(() => {
        this.insert.run(kind, topic, msgId, body, body.length, PRIORITY[kind], this.now());
        this.enforce(kind, limit);
      })();
      return true;
    } catch (err) {
      this.counters.error('E_AGENT_STATE_DB');
      this.logger.error('outbox write failed', {
        code: 'E_AGENT_STATE_DB',
        kind,
        err: (err as Error).message,
      });
      return false;
    }
  }

  private enforce(kind: OutboxKind, limit: KindLimit): void {
    for (;;) {
      const usage = this.kindUsage.get(kind)!;
      if (usage.rows <= limit.maxRows && (usage.bytes ?? 0) <= limit.maxBytes) break;
      const victim = this.oldestOfKind.get(kind);
      if (!victim) break;
      this.deleteSeq.run(victim.seq);
      this.recordDrop(victim.kind);
    }
    for (;;) {
      if ((this.totalBytes.get()!.bytes ?? 0) <= this.options.totalMaxBytes) break;
      const victim = this.lowestPriorityOldest.get();
      if (!victim) break;
      this.deleteSeq.run(victim.seq);
      this.recordDrop(victim.kind);
    }
  }

  private recordDrop(kind: OutboxKind): void {
    this.bumpCounter.run(`dropped.${kind}`, 1);
    this.counters.error('E_OUTBOX_DROPPED');
  }

  private countDropped(kind: OutboxKind, n: number): void {
    try {
      this.bumpCounter.run(`dropped.${kind}`, n);
    } catch {
      // counted in memory below either way
    }
    this.counters.error('E_OUTBOX_DROPPED');
    this.logger.warn('outbox dropped a message larger than its limit', { code: 'E_OUTBOX_DROPPED', kind });
  }

  /** The oldest messages of the highest priority first. */
  pending(limit: number): OutboxMessage[] {
    return this.listPending.all(limit).map((r) => ({
      seq: r.seq,
      kind: r.kind,
      topic: r.topic,
      msgId: r.msg_id,
      payload: r.payload,
    }));
  }

  /** Called on the broker's acknowledgement. */
  ack(seq: number): void {
    try {
      this.deleteSeq.run(seq);
    } catch (err) {
      this.counters.error('E_AGENT_STATE_DB');
      this.logger.error('outbox delete failed', { code: 'E_AGENT_STATE_DB', err: (err as Error).message });
    }
  }

  depth(): number {
    return this.countAll.get()!.rows;
  }

  /** Messages dropped since the state folder was created, per kind. */
  dropped(): Record<OutboxKind, number> {
    const read = (k: OutboxKind) => this.readCounter.get(`dropped.${k}`)?.value ?? 0;
    return {
      events: read('events'),
      telemetry: read('telemetry'),
      'cmd-result': read('cmd-result'),
      reported: read('reported'),
    };
  }

  droppedTotal(): number {
    return Object.values(this.dropped()).reduce((a, b) => a + b, 0);
  }
}

export function assertOutboxKind(kind: string): OutboxKind {
  if (kind === 'events' || kind === 'telemetry' || kind === 'cmd-result' || kind === 'reported') return kind;
  throw new PerchError('E_INTERNAL', `unknown outbox kind ${kind}`);
}
