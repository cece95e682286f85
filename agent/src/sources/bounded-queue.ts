/**
 * The hand-off between what a source decodes and what it delivers: never unbounded. When the consumer has
 * not taken an item before the next arrives and the queue is full, the oldest item is dropped and counted:
 * a camera frame from two seconds ago is worth less than the current one. Capacity 1 is the latest-frame
 * slot; audio and sensor windows use a deeper queue because each window carries state forward.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((item: T | undefined) => void) | undefined;
  private closed = false;
  private droppedCount = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  /** Items dropped because the queue was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  get size(): number {
    return this.items.length;
  }

  /** Adds an item, dropping the oldest when full. Returns false once closed (the item is discarded). */
  push(item: T): boolean {
    if (this.closed) return false;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(item);
      return true;
    }
    if (this.items.length >= this.capacity) {
      this.items.shift();
      this.droppedCount += 1;
    }
    this.items.push(item);
    return true;
  }

  /** The oldest item, waiting for one if empty; undefined once closed and drained, or when aborted. */
  take(signal?: AbortSignal): Promise<T | undefined> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.closed || signal?.aborted) return Promise.resolve(undefined);
    if (this.waiter) return Promise.reject(new Error('BoundedQueue supports one waiting consumer'));
    return new Promise((resolve) => {
      const onAbort = (): void => {
        if (this.waiter === done) this.waiter = undefined;
        resolve(undefined);
      };
      const done = (value: T | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      this.waiter = done;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** No more items will come; a waiting consumer gets undefined, queued items can still be taken. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }

  /** Empties the queue without counting drops (stop discards what nobody will consume). */
  clear(): void {
    this.items.length = 0;
  }
}
