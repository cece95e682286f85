/** Rejects when `signal` aborts, so a loop waiting on a queue can stop. */
function abortable<T>(p: Promise<T>, signal: AbortSignal, cancel: () => void): Promise<T> {
  if (signal.aborted) {
    cancel();
    return Promise.reject(new Error('aborted'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      cancel();
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * A bounded queue that never blocks the producer: when full, `push` drops the oldest item and returns it,
 * so a slow consumer sees the newest frames and the caller counts the drop.
 */
export class DropOldestQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((v: T) => void) | undefined;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  push(item: T): T | undefined {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(item);
      return undefined;
    }
    this.items.push(item);
    return this.items.length > this.capacity ? this.items.shift() : undefined;
  }

  take(signal: AbortSignal): Promise<T> {
    const first = this.items.shift();
    if (first !== undefined) return Promise.resolve(first);
    const p = new Promise<T>((resolve) => {
      this.waiter = resolve;
    });
    return abortable(p, signal, () => {
      this.waiter = undefined;
    });
  }

  /** Remove and return everything waiting. */
  drain(): T[] {
    return this.items.splice(0);
  }
}

/** A hand-off slot of capacity one between two loops: `put` waits until the previous item was taken. */
export class Slot<T> {
  private item: { v: T } | undefined;
  private taker: ((v: T) => void) | undefined;
  private putter: (() => void) | undefined;

  async put(v: T, signal: AbortSignal): Promise<void> {
    while (this.item) {
      await abortable(
        new Promise<void>((resolve) => {
          this.putter = resolve;
        }),
        signal,
        () => {
          this.putter = undefined;
        },
      );
    }
    if (this.taker) {
      const t = this.taker;
      this.taker = undefined;
      t(v);
      return;
    }
    this.item = { v };
  }

  take(signal: AbortSignal): Promise<T> {
    if (this.item) {
      const { v } = this.item;
      this.item = undefined;
      const p = this.putter;
      this.putter = undefined;
      p?.();
      return Promise.resolve(v);
    }
    return abortable(
      new Promise<T>((resolve) => {
        this.taker = resolve;
      }),
      signal,
      () => {
        this.taker = undefined;
      },
    );
  }

  get full(): boolean {
    return this.item !== undefined;
  }
}
