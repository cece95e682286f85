import type { Source, SourceHealth, SourceItem, SourceStats } from '../../../src/pipeline/types';

type ItemInput<T> = T extends unknown ? Omit<T, 'seq' | 'ts'> & { seq?: number; ts?: number } : never;

/** A source the test drives by hand: `push` hands an item to the pipeline at once. */
export class ManualSource<T extends SourceItem = SourceItem> implements Source<T> {
  readonly id = 'manual';
  private onItem: ((item: T) => void) | undefined;
  private produced = 0;
  private seq = 0;
  started = 0;
  stopped = 0;
  failStart: Error | undefined;

  constructor(readonly itemKind: T['kind']) {}

  start(onItem: (item: T) => void): Promise<void> {
    if (this.failStart) return Promise.reject(this.failStart);
    this.started++;
    this.onItem = onItem;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopped++;
    this.onItem = undefined;
    return Promise.resolve();
  }

  push(item: ItemInput<T>): void {
    this.produced++;
    this.onItem?.({ ts: Date.now(), seq: this.seq++, ...item } as unknown as T);
  }

  health(): SourceHealth {
    return { state: this.onItem ? 'running' : 'stopped', since: 0, restarts: 0 };
  }

  stats(): SourceStats {
    return { produced: this.produced, dropped: 0, errors: {} };
  }
}
