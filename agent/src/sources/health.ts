import type { Clock, ErrorCode } from '@perch/shared';
import type { CodedErrorInfo, SourceHealth, SourceState, SourceStats } from '../pipeline/types';
import { RateMeter } from './rate-meter';

/** A coded error as a source records it; `details` is safe to show (URLs are redacted). */
export interface SourceErrorInfo extends CodedErrorInfo {
  readonly code: ErrorCode;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The pipeline's SourceHealth plus what telemetry wants to see about a source in particular. Plain JSON.
 */
export interface SourceHealthDetail extends SourceHealth {
  readonly id: string;
  /** The config kind (lavfi, rtsp, folder, sensor-mqtt ...). */
  readonly kind: string;
  readonly lastError?: SourceErrorInfo;
  /** Items (frames, windows, images) received from the input per second, before any drop. */
  readonly fpsIn: number;
  /** Items received from the input in total. */
  readonly itemsIn: number;
  /** Items dropped inside the source because the consumer had not taken the previous one. */
  readonly drops: number;
  /** A finite input (a file) was read to its end; state is then `stopped`. */
  readonly ended: boolean;
  /** Last lines of the child process's stderr, for sources that run one. */
  readonly stderrTail?: readonly string[];
}

/** Mutable health record owned by one source. */
export class HealthTracker {
  private stateValue: SourceState = 'stopped';
  private sinceValue: number;
  restarts = 0;
  itemsIn = 0;
  produced = 0;
  ended = false;
  lastItemTs: number | undefined;
  lastError: SourceErrorInfo | undefined;
  private readonly errorCounts: Record<string, number> = {};
  private readonly meter: RateMeter;

  constructor(
    readonly id: string,
    readonly kind: string,
    private readonly clock: Clock,
  ) {
    this.meter = new RateMeter(clock);
    this.sinceValue = clock.now();
  }

  get state(): SourceState {
    return this.stateValue;
  }

  set state(next: SourceState) {
    if (next === this.stateValue) return;
    this.stateValue = next;
    this.sinceValue = this.clock.now();
  }

  /** Something arrived from the input: the source is running. */
  itemIn(): void {
    this.itemsIn += 1;
    this.meter.mark();
    this.alive();
  }

  /** Input is flowing, though it may not have completed an item yet (e.g. a sensor window filling up). */
  alive(): void {
    if (this.stateValue === 'starting' || this.stateValue === 'backoff') this.state = 'running';
  }

  error(code: ErrorCode, message: string, details?: Record<string, unknown>): SourceErrorInfo {
    const at = this.clock.now();
    const info: SourceErrorInfo =
      details === undefined ? { code, message, at } : { code, message, at, details };
    this.lastError = info;
    this.errorCounts[code] = (this.errorCounts[code] ?? 0) + 1;
    return info;
  }

  errorCount(code: ErrorCode): number {
    return this.errorCounts[code] ?? 0;
  }

  health(drops: number, stderrTail?: readonly string[]): SourceHealthDetail {
    return {
      id: this.id,
      kind: this.kind,
      state: this.stateValue,
      since: this.sinceValue,
      restarts: this.restarts,
      fpsIn: this.meter.rate(),
      itemsIn: this.itemsIn,
      drops,
      ended: this.ended,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(stderrTail ? { stderrTail: [...stderrTail] } : {}),
    };
  }

  stats(drops: number): SourceStats {
    return {
      produced: this.produced,
      dropped: drops,
      errors: { ...this.errorCounts },
      ...(this.lastItemTs !== undefined ? { lastItemTs: this.lastItemTs } : {}),
    };
  }
}
