import type { Clock, Logger } from '@perch/shared';
import type { Counters } from '../counters';
import type { Notifier } from './sd-notify';

export interface HealthCheck {
  readonly name: string;
  /** undefined = healthy, otherwise why not. */
  check(): string | undefined;
}

/**
 * Sends WATCHDOG=1 at half the systemd period, but only while every health check passes and the event
 * loop itself kept its schedule: a stalled loop, a stuck pipeline or a stuck outbox withholds the ping
 * and systemd restarts the agent.
 */
export class Watchdog {
  private timer: unknown;
  private lastTick = 0;
  private pings = 0;

  constructor(
    private readonly notifier: Notifier,
    private readonly periodMs: number,
    private readonly checks: readonly HealthCheck[],
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly counters: Counters,
  ) {}

  start(): void {
    const every = Math.max(1, Math.floor(this.periodMs / 2));
    this.lastTick = this.clock.now();
    this.timer = this.clock.setInterval(() => this.tick(every), every);
  }

  /** Runs the checks; exported for tests. Returns the failing reasons. */
  tick(every: number): string[] {
    const now = this.clock.now();
    const lag = now - this.lastTick - every;
    this.lastTick = now;
    const reasons: string[] = [];
    if (lag > every) reasons.push(`event loop lagged ${lag} ms`);
    for (const c of this.checks) {
      try {
        const reason = c.check();
        if (reason) reasons.push(`${c.name}: ${reason}`);
      } catch (err) {
        reasons.push(`${c.name}: check threw ${String(err)}`);
      }
    }
    if (reasons.length === 0) {
      this.notifier.notify('WATCHDOG=1');
      this.pings++;
    } else {
      this.counters.error('E_AGENT_UNHEALTHY');
      this.logger.warn('withholding watchdog ping', { code: 'E_AGENT_UNHEALTHY', reasons });
    }
    return reasons;
  }

  pingCount(): number {
    return this.pings;
  }

  stop(): void {
    this.clock.clearInterval(this.timer as never);
  }
}
