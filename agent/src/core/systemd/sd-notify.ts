import { spawn } from 'node:child_process';
import type { Logger } from '@perch/shared';
import type { Counters } from '../counters';

/** sd_notify(3): tells systemd READY=1, WATCHDOG=1, STOPPING=1, STATUS=... */
export interface Notifier {
  readonly enabled: boolean;
  notify(state: string): void;
  close(): void;
}

interface UnixDgramSocket {
  on(event: 'error', listener: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  close(): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

class NullNotifier implements Notifier {
  readonly enabled = false;
  notify(): void {}
  close(): void {}
}

/**
 * Node has no unix datagram sockets, so a path socket goes through the `unix-dgram` native addon; an
 * abstract one ("@name", which the addon cannot address) through the `systemd-notify` tool.
 */
class DgramNotifier implements Notifier {
  readonly enabled = true;
  private socket: UnixDgramSocket | undefined;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
    private readonly counters: Counters,
  ) {}

  private failed(err: unknown): void {
    this.counters.error('E_SYSTEMD_NOTIFY');
    this.logger.warn('sd_notify failed', { code: 'E_SYSTEMD_NOTIFY', err: String(err) });
  }

  notify(state: string): void {
    if (this.path.startsWith('@')) {
      const child = spawn('systemd-notify', state.split('\n'), {
        stdio: 'ignore',
        env: { ...process.env, NOTIFY_SOCKET: this.path },
      });
      child.on('error', (err) => this.failed(err));
      return;
    }
    try {
      if (!this.socket) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const mod = require('unix-dgram') as UnixDgramModule;
        this.socket = mod.createSocket('unix_dgram');
        this.socket.on('error', (err) => this.failed(err));
      }
      const buf = Buffer.from(state, 'utf8');
      this.socket.send(buf, 0, buf.length, this.path, (err) => {
        if (err) this.failed(err);
      });
    } catch (err) {
      this.failed(err);
    }
  }

  close(): void {
    try {
      this.socket?.close();
    } catch {
      // already closed
    }
    this.socket = undefined;
  }
}

export function createNotifier(env: NodeJS.ProcessEnv, logger: Logger, counters: Counters): Notifier {
  const path = env.NOTIFY_SOCKET;
  if (!path) return new NullNotifier();
  return new DgramNotifier(path, logger, counters);
}

/** The watchdog period systemd asked for (WATCHDOG_USEC), in ms; undefined when it is off for us. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 1000));
}
