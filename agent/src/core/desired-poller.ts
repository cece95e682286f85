import { decodeMessage, safeJsonParse, type Clock, type DesiredState, type Logger } from '@perch/shared';
import { Backoff } from './backoff';
import type { Counters } from './counters';

export interface PollerOptions {
  url: string;
  token: string;
  intervalMs: number;
  maxBytes: number;
}

/**
 * Fallback for the retained MQTT desired state: while MQTT is down, poll the controller over HTTP with
 * an ETag (so an unchanged state costs a 304) and full jitter around the interval (so a fleet that lost
 * its broker does not poll in lockstep); failures back off up to ten intervals.
 */
export class DesiredPoller {
  private timer: unknown;
  private etag: string | undefined;
  private active = false;
  private readonly backoff: Backoff;

  constructor(
    private readonly options: PollerOptions,
    private readonly onDesired: (d: DesiredState) => void,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly fetchFn: typeof fetch = fetch,
    private readonly random: () => number = Math.random,
  ) {
    this.backoff = new Backoff({ baseMs: options.intervalMs, capMs: options.intervalMs * 10, minMs: 1000 });
  }

  /** Starts polling (MQTT went down). */
  resume(): void {
    if (this.active) return;
    this.active = true;
    this.schedule(this.options.intervalMs * (0.5 + this.random() / 2));
  }

  /** Stops polling (MQTT is back). */
  pause(): void {
    this.active = false;
    this.clock.clearTimeout(this.timer as never);
  }

  private schedule(ms: number): void {
    this.clock.clearTimeout(this.timer as never);
    this.timer = this.clock.setTimeout(() => void this.poll(), Math.floor(ms));
  }

  async poll(): Promise<void> {
    if (!this.active) return;
    try {
      const headers: Record<string, string> = { Authorization: `Bearer ${this.options.token}` };
      if (this.etag) headers['If-None-Match'] = this.etag;
      const res = await this.fetchFn(this.options.url, { headers, signal: AbortSignal.timeout(15_000) });
      if (res.status === 200) {
        const body = Buffer.from(await res.arrayBuffer());
        // `/api/v1/device/self` wraps the document: {deviceId, desired}; a bare document is accepted too.
        const wrapped = safeJsonParse(body, { maxBytes: this.options.maxBytes });
        if (wrapped.ok && wrapped.value && typeof wrapped.value === 'object' && 'deviceId' in wrapped.value) {
          const inner = (wrapped.value as { desired?: unknown }).desired;
          if (inner === null || inner === undefined) {
            this.backoff.reset();
            if (this.active) this.schedule(this.options.intervalMs * (0.5 + this.random()));
            return;
          }
          const decodedInner = decodeMessage('desired', JSON.stringify(inner), {
            maxBytes: this.options.maxBytes,
          });
          if (decodedInner.ok) {
            this.etag = res.headers.get('etag') ?? undefined;
            this.onDesired(decodedInner.value);
          } else this.counters.error(decodedInner.error.code);
          this.backoff.reset();
          if (this.active) this.schedule(this.options.intervalMs * (0.5 + this.random()));
          return;
        }
        const decoded = decodeMessage('desired', body, { maxBytes: this.options.maxBytes });
        if (decoded.ok) {
          this.etag = res.headers.get('etag') ?? undefined;
          this.onDesired(decoded.value);
        } else {
          this.counters.error(decoded.error.code);
          this.logger.warn('polled desired state rejected', {
            code: decoded.error.code,
            err: decoded.error.message,
          });
        }
      } else if (res.status !== 304) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      this.backoff.reset();
      if (this.active) this.schedule(this.options.intervalMs * (0.5 + this.random()));
    } catch (err) {
      this.counters.inc('desired.poll_failed');
      this.logger.debug('desired poll failed', { err: String(err) });
      if (this.active) this.schedule(this.backoff.next());
    }
  }
}
