import type { Clock } from '@perch/shared';
import type { Source, SourceItem, SourceStats } from '../pipeline/types';
import { BoundedQueue } from './bounded-queue';
import { HealthTracker, type SourceHealthDetail } from './health';
import type { SourceLogger } from './logger';

export interface BaseSourceOptions<K extends SourceItem['kind']> {
  readonly id: string;
  /** The config kind, for health. */
  readonly kind: string;
  readonly itemKind: K;
  readonly clock: Clock;
  readonly logger: SourceLogger;
  /** Depth of the hand-off queue; 1 = latest-item slot. */
  readonly queue: number;
}

type Distribute<T> = T extends unknown ? Omit<T, 'seq' | 'ts'> : never;
/** An item as a subclass makes it; seq and ts are stamped by the base. */
export type ItemBody<T extends SourceItem> = Distribute<T>;

/**
 * What every source shares: the start/stop lifecycle, the bounded hand-off queue and the pump that
 * delivers to the pipeline's `onItem`, sequence numbers and timestamps, health and stats.
 *
 * Items are numbered when they come out of the input, before the queue: a gap in `seq` seen by the
 * pipeline is an item the source dropped.
 */
export abstract class BaseSource<T extends SourceItem> implements Source<T> {
  readonly id: string;
  readonly itemKind: T['kind'];
  protected readonly tracker: HealthTracker;
  protected readonly clock: Clock;
  protected readonly logger: SourceLogger;
  private readonly queue: BoundedQueue<T>;
  private seq = 0;
  private onItem: ((item: T) => void) | undefined;
  private abort = new AbortController();
  private pump: Promise<void> = Promise.resolve();
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(opts: BaseSourceOptions<T['kind']>) {
    this.id = opts.id;
    this.itemKind = opts.itemKind;
    this.clock = opts.clock;
    this.logger = opts.logger;
    this.tracker = new HealthTracker(opts.id, opts.kind, opts.clock);
    this.queue = new BoundedQueue<T>(opts.queue);
  }

  async start(onItem: (item: T) => void): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.onItem = onItem;
    this.tracker.state = 'starting';
    this.pump = this.runPump(this.abort.signal);
    await this.begin();
  }

  stop(): Promise<void> {
    if (!this.started) return Promise.resolve();
    this.stopping ??= (async () => {
      this.abort.abort();
      try {
        await this.end();
      } finally {
        this.queue.close();
        this.queue.clear();
        await this.pump;
        this.tracker.state = 'stopped';
      }
    })();
    return this.stopping;
  }

  health(): SourceHealthDetail {
    return this.tracker.health(this.queue.dropped, this.stderrTail());
  }

  stats(): SourceStats {
    return this.tracker.stats(this.queue.dropped);
  }

  /** True once stop() was called; loops check it. */
  protected get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  protected get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Starts the input (spawn, watch, first poll). Must not throw for runtime failures. */
  protected abstract begin(): Promise<void>;
  /** Releases everything begin() acquired: processes, watchers, timers. */
  protected abstract end(): Promise<void>;
  /** Overridden by process-backed sources. */
  protected stderrTail(): readonly string[] | undefined {
    return undefined;
  }

  /** Hands an item from the input on (through the bounded queue). */
  protected emit(body: ItemBody<T>): void {
    if (this.stopped) return;
    const ts = this.clock.now();
    this.tracker.itemIn();
    this.queue.push({ ...body, ts, seq: this.seq++ } as unknown as T);
  }

  private async runPump(signal: AbortSignal): Promise<void> {
    for (;;) {
      const item = await this.queue.take(signal);
      if (item === undefined) return;
      this.tracker.produced += 1;
      this.tracker.lastItemTs = item.ts;
      try {
        this.onItem?.(item);
      } catch (err) {
        // The pipeline promised a cheap, non-throwing onItem; if it throws anyway the source goes on.
        this.tracker.error('E_INTERNAL', `onItem threw: ${(err as Error).message}`);
        this.logger.error('source consumer threw', { err: (err as Error).message });
      }
    }
  }
}
