import type { Clock, ErrorCode, TimerHandle } from '@perch/shared';
import { backoffDelay, type BackoffOptions } from './backoff';
import type { HealthTracker } from './health';
import type { SourceLogger } from './logger';
import type { ChildLike, SpawnFn } from './spawn';
import { StderrTail } from './stderr-tail';

export interface SupervisorOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly spawn: SpawnFn;
  readonly clock: Clock;
  readonly backoff: BackoffOptions;
  readonly random?: (() => number) | undefined;
  /** Kill and restart when stdout is silent this long; 0 disables. */
  readonly stallTimeoutMs: number;
  /** A clean exit (code 0) means the input is done (a file), not a failure. */
  readonly finite: boolean;
  /** A process that ran at least this long before dying starts the backoff from the beginning again. */
  readonly stableAfterMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  readonly killGraceMs?: number;
  readonly health: HealthTracker;
  readonly logger: SourceLogger;
  /** Every stdout chunk. */
  readonly onData: (chunk: Buffer) => void;
  /** A new process is about to produce data: drop any partial parse state of the last one. */
  readonly onSpawn?: () => void;
  /** The process ended (any reason) after its stdout was fully read: flush parse state. */
  readonly onExit?: () => void;
  /** A finite input finished cleanly; no restart follows. */
  readonly onEnd?: () => void;
}

/**
 * Runs one child process for a source and keeps it running: restarts it with jittered exponential backoff
 * after it exits, fails to spawn or stalls; keeps its stderr tail; records each failure with a code in
 * the source's health. One process at a time; after stop() nothing is left running.
 */
export class ProcessSupervisor {
  private child: ChildLike | undefined;
  private attempt = 0;
  private stopped = true;
  private startedAt = 0;
  private retryTimer: TimerHandle | undefined;
  private stallTimer: TimerHandle | undefined;
  private stallReason: string | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly stderr = new StderrTail();
  /** The delay chosen before the latest restart, ms. */
  lastDelayMs = 0;

  constructor(private readonly opts: SupervisorOptions) {}

  /** The running child's pid, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    this.launch();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.clearStall();
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    // A real timer on purpose: stop() must finish even when a test's manual clock is not advanced.
    const killer = setTimeout(() => child.kill('SIGKILL'), this.opts.killGraceMs ?? 3_000);
    await this.exited;
    clearTimeout(killer);
  }

  private launch(): void {
    const { opts } = this;
    this.retryTimer = undefined;
    if (this.stopped) return;
    opts.health.state = 'starting';
    this.stderr.clear();
    opts.onSpawn?.();
    let child: ChildLike;
    try {
      child = opts.spawn(opts.command, opts.args);
    } catch (err) {
      this.fail('E_SOURCE_SPAWN', `cannot start ${opts.command}: ${(err as Error).message}`);
      return;
    }
    this.child = child;
    this.startedAt = opts.clock.now();
    this.stallReason = undefined;
    let resolveExited!: () => void;
    this.exited = new Promise((r) => (resolveExited = r));
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      this.child = undefined;
      this.clearStall();
      try {
        opts.onExit?.();
        this.onExit(code, signal, spawnError);
      } finally {
        resolveExited();
      }
    };
    child.once('error', (err) => finish(null, null, err));
    child.once('close', (code, signal) => finish(code, signal));
    child.stderr.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    child.stdout.on('data', (chunk: Buffer) => {
      this.armStall();
      opts.onData(chunk);
    });
    this.armStall();
    opts.logger.debug('source process started', { command: opts.command, pid: child.pid });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void {
    const { opts } = this;
    if (this.stopped) {
      opts.health.state = 'stopped';
      return;
    }
    if (spawnError) {
      this.fail('E_SOURCE_SPAWN', `cannot start ${opts.command}: ${spawnError.message}`);
      return;
    }
    if (code === 0 && opts.finite && this.stallReason === undefined) {
      opts.health.ended = true;
      opts.health.state = 'stopped';
      opts.logger.info('source input ended', { command: opts.command });
      opts.onEnd?.();
      return;
    }
    if (opts.clock.now() - this.startedAt >= (opts.stableAfterMs ?? 30_000)) this.attempt = 0;
    if (this.stallReason !== undefined) {
      this.fail('E_SOURCE_STALLED', this.stallReason);
      return;
    }
    const how = signal ? `signal ${signal}` : `code ${String(code)}`;
    const last = this.stderr.get().at(-1);
    this.fail('E_SOURCE_EXITED', `${opts.command} exited with ${how}${last ? `: ${last}` : ''}`, {
      exitCode: code,
      signal,
    });
  }

  private fail(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): void {
    const { opts } = this;
    this.child = undefined;
    const delay = backoffDelay(opts.backoff, this.attempt, opts.random);
    this.attempt += 1;
    this.lastDelayMs = delay;
    opts.health.error(code, message, { ...extra, retryInMs: delay, stderrTail: this.stderr.get() });
    opts.health.state = 'backoff';
    opts.logger.warn('source process failed; restarting after backoff', { code, message, retryInMs: delay });
    this.retryTimer = opts.clock.setTimeout(() => {
      opts.health.restarts += 1;
      this.launch();
    }, delay);
  }

  private armStall(): void {
    const { opts } = this;
    this.clearStall();
    if (opts.stallTimeoutMs <= 0 || !this.child) return;
    const child = this.child;
    this.stallTimer = opts.clock.setTimeout(() => {
      this.stallReason = `no data from ${opts.command} for ${opts.stallTimeoutMs} ms`;
      child.kill('SIGKILL');
    }, opts.stallTimeoutMs);
  }

  private clearStall(): void {
    this.opts.clock.clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }
}
