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
  private readonly waiters: ((v: T) => void)[] = [];

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length;
  }

  push(item: T): T | undefined {
    const w = this.waiters.shift();
    if (w) {
      w(item);
      return undefined;
    }
    this.items.push(item);
    return this.items.length > this.capacity ? this.items.shift() : undefined;
  }

  take(signal: AbortSignal): Promise<T> {
    const first = this.items.shift();
    if (first !== undefined) return Promise.resolve(first);
    let waiter: ((v: T) => void) | undefined;
    const p = new Promise<T>((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return abortable(p, signal, () => {
      const i = waiter ? this.waiters.indexOf(waiter) : -1;
      if (i >= 0) this.waiters.splice(i, 1);
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

/**
 * Lets work that finishes out of order pass a point in the order it started: tickets are 0, 1, 2 ...;
 * `wait(n)` resolves once every ticket before n has called `done`.
 */
export class OrderGate {
  private next = 0;
  private readonly waiting = new Map<number, () => void>();
  private readonly finished = new Set<number>();

  wait(ticket: number): Promise<void> {
    if (ticket === this.next) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiting.set(ticket, resolve));
  }

  /** Marks a ticket finished (in any order); the gate opens for the next unfinished one in sequence. */
  done(ticket: number): void {
    if (ticket < this.next) return;
    this.finished.add(ticket);
    while (this.finished.has(this.next)) {
      this.finished.delete(this.next);
      this.next++;
    }
    const w = this.waiting.get(this.next);
    if (w) {
      this.waiting.delete(this.next);
      w();
    }
  }

  /** Forget waiters (the loops are stopping). */
  reset(): void {
    this.next = 0;
    this.waiting.clear();
    this.finished.clear();
  }
}
