import type { Clock, Logger } from '@perch/shared';
import type { Outbox, OutboxMessage } from './outbox';

/** What the sender needs from the MQTT session: a QoS 1 publish that resolves on PUBACK. */
export interface AckPublisher {
  readonly connected: boolean;
  publishAcked(topic: string, payload: Buffer): Promise<void>;
}

export interface OutboxSenderOptions {
  /** Messages in flight at once. */
  window: number;
  /** A message without PUBACK after this long may be sent again (the controller deduplicates by id). */
  ackTimeoutMs: number;
}

/**
 * Moves messages from the outbox to the broker. Rows are deleted only on PUBACK; a message whose
 * acknowledgement never comes is sent again later, which is safe because every message has an id.
 */
export class OutboxSender {
  private readonly inFlight = new Map<number, number>();
  private running = false;
  private again = false;
  private lastProgress: number;
  private acked = 0;

  constructor(
    private readonly outbox: Outbox,
    private readonly publisher: AckPublisher,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: OutboxSenderOptions = { window: 32, ackTimeoutMs: 60_000 },
  ) {
    this.lastProgress = clock.now();
  }

  /** Sends what fits in the window; call on enqueue, on connect and on every acknowledgement. */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        this.fill();
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private fill(): void {
    if (!this.publisher.connected) return;
    const now = this.clock.now();
    for (const [seq, sentAt] of this.inFlight) {
      if (now - sentAt > this.options.ackTimeoutMs) this.inFlight.delete(seq);
    }
    const free = this.options.window - this.inFlight.size;
    if (free <= 0) return;
    const candidates = this.outbox.pending(this.options.window * 2).filter((m) => !this.inFlight.has(m.seq));
    for (const message of candidates.slice(0, free)) this.send(message, now);
  }

  private send(message: OutboxMessage, now: number): void {
    this.inFlight.set(message.seq, now);
    this.publisher.publishAcked(message.topic, message.payload).then(
      () => {
        this.inFlight.delete(message.seq);
        this.outbox.ack(message.seq);
        this.acked++;
        this.lastProgress = this.clock.now();
        this.kick();
      },
      (err: unknown) => {
        // Not acknowledged (connection lost, client stopped): the row stays and goes out again.
        this.inFlight.delete(message.seq);
        this.logger.debug('outbox publish not acknowledged', { seq: message.seq, err: String(err) });
      },
    );
  }

  inFlightCount(): number {
    return this.inFlight.size;
  }

  ackedCount(): number {
    return this.acked;
  }

  /**
   * Healthy when nothing is waiting, or when something was acknowledged recently, or when we are
   * offline (a broker outage is not the agent's fault and must not make systemd restart it).
   */
  healthy(stallMs: number): boolean {
    if (!this.publisher.connected) return true;
    if (this.outbox.depth() === 0) {
      this.lastProgress = this.clock.now();
      return true;
    }
    return this.clock.now() - this.lastProgress < stallMs;
  }

  /** Resolves when the outbox is empty and nothing is in flight, or when the deadline passes. */
  async drain(deadlineMs: number, signal?: AbortSignal): Promise<boolean> {
    const end = this.clock.now() + deadlineMs;
    while (this.clock.now() < end && !signal?.aborted) {
      if (this.outbox.depth() === 0 && this.inFlight.size === 0) return true;
      if (!this.publisher.connected) return false;
      this.kick();
      await this.clock.sleep(20, signal).catch(() => undefined);
    }
    return this.outbox.depth() === 0;
  }
}
