import type { ErrorCode, TimerHandle } from '@perch/shared';
import type { Frame } from '../pipeline/types';
import { backoffDelay } from './backoff';
import { BaseSource } from './base-source';
import type { SnapshotUrlSourceConfig } from './config';
import { backoffOf, type ResolvedDeps } from './deps';
import { checkImage } from './image-check';
import { redact } from './redact';

class FetchFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * A camera's still-image URL polled on a schedule. Each poll is bounded: a timeout on the whole request
 * (headers and body), a size limit enforced while reading (and up front from Content-Length), an image
 * content type. A failed poll is a coded error; the next one waits with jittered backoff from intervalMs
 * so that a dead camera is not hammered, and success returns to the plain interval.
 */
export class SnapshotUrlSource extends BaseSource<Frame> {
  private timer: TimerHandle | undefined;
  private polling: Promise<void> | undefined;
  private failures = 0;
  private readonly fetchFn: typeof fetch;
  private readonly random: () => number;

  constructor(
    private readonly config: SnapshotUrlSourceConfig,
    deps: ResolvedDeps,
  ) {
    super({
      id: deps.id,
      kind: config.kind,
      itemKind: 'frame',
      clock: deps.clock,
      logger: deps.logger,
      queue: 1,
    });
    this.fetchFn = deps.fetch;
    this.random = deps.random;
  }

  protected begin(): Promise<void> {
    this.schedule(0);
    return Promise.resolve();
  }

  protected async end(): Promise<void> {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.polling = this.pollOnce().finally(() => (this.polling = undefined));
    }, delay);
  }

  private async pollOnce(): Promise<void> {
    const started = this.clock.now();
    try {
      const data = await this.fetchImage();
      const check = await checkImage(data);
      if (!check.ok) throw new FetchFailure(check.code, check.message);
      this.failures = 0;
      this.emit({ kind: 'frame', data });
      this.schedule(Math.max(0, this.config.intervalMs - (this.clock.now() - started)));
    } catch (err) {
      if (this.stopped) return;
      const failure =
        err instanceof FetchFailure
          ? err
          : new FetchFailure('E_SOURCE_HTTP_FETCH', redact((err as Error).message));
      const delay = Math.max(
        this.config.intervalMs,
        backoffDelay(backoffOf(this.config), this.failures, this.random),
      );
      this.failures += 1;
      this.tracker.error(failure.code, failure.message, { ...failure.details, retryInMs: delay });
      this.tracker.state = 'backoff';
      this.logger.warn('snapshot poll failed', {
        code: failure.code,
        message: failure.message,
        retryInMs: delay,
      });
      this.schedule(delay);
    }
  }

  private async fetchImage(): Promise<Buffer> {
    const { config } = this;
    const controller = new AbortController();
    let timedOut = false;
    const onStop = (): void => controller.abort();
    this.signal.addEventListener('abort', onStop, { once: true });
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, config.timeoutMs);
    try {
      const res = await this.fetchFn(config.url, {
        headers: { accept: config.contentTypes.join(', '), ...config.headers },
        signal: controller.signal,
        redirect: 'follow',
      });
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        throw new FetchFailure('E_SOURCE_HTTP_STATUS', `snapshot URL answered ${res.status}`, {
          status: res.status,
        });
      }
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (!config.contentTypes.includes(type)) {
        await res.body?.cancel().catch(() => undefined);
        throw new FetchFailure('E_SOURCE_HTTP_CONTENT_TYPE', `snapshot URL sent content type "${type}"`, {
          contentType: type,
        });
      }
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > config.maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw new FetchFailure(
          'E_SOURCE_HTTP_TOO_LARGE',
          `snapshot is ${declared} bytes, more than ${config.maxBytes}`,
        );
      }
      return await this.readBody(res);
    } catch (err) {
      if (timedOut) {
        throw new FetchFailure(
          'E_SOURCE_HTTP_TIMEOUT',
          `snapshot URL did not answer within ${config.timeoutMs} ms`,
        );
      }
      throw err;
    } finally {
      this.clock.clearTimeout(timer);
      this.signal.removeEventListener('abort', onStop);
    }
  }

  private async readBody(res: Response): Promise<Buffer> {
    if (!res.body) return Buffer.alloc(0);
    const reader = res.body.getReader();
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > this.config.maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new FetchFailure(
          'E_SOURCE_HTTP_TOO_LARGE',
          `snapshot is larger than ${this.config.maxBytes} bytes`,
        );
      }
      parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
    return Buffer.concat(parts, total);
  }
}
