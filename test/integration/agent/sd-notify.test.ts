import path from 'node:path';
import { createLogger, ManualClock } from '@perch/shared';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Counters } from '../../../agent/src/core/counters';
import { createNotifier, watchdogIntervalMs } from '../../../agent/src/core/systemd/sd-notify';
import { Watchdog } from '../../../agent/src/core/systemd/watchdog';

interface DgramSocket {
  on(event: 'message', fn: (buf: Buffer) => void): void;
  bind(path: string): void;
  close(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const unixDgram = require('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket };

const logger = createLogger({ namespace: 'test', silent: true });

describe('systemd notification', () => {
  let tmp: ReturnType<typeof tempDir>;
  let socket: DgramSocket;
  let received: string[];
  let socketPath: string;

  beforeEach(() => {
    tmp = tempDir();
    socketPath = path.join(tmp.dir, 'notify.sock');
    received = [];
    socket = unixDgram.createSocket('unix_dgram');
    socket.on('message', (buf) => received.push(buf.toString()));
    socket.bind(socketPath);
  });
  afterEach(() => {
    socket.close();
    tmp.cleanup();
  });

  it('sends READY=1 to the NOTIFY_SOCKET datagram socket', async () => {
    const notifier = createNotifier({ NOTIFY_SOCKET: socketPath }, logger, new Counters());
    notifier.notify('READY=1\nSTATUS=up');
    await waitFor(() => received.length > 0, { what: 'a datagram' });
    expect(received).toEqual(['READY=1\nSTATUS=up']);
    notifier.close();
  });

  it('is a no-op without NOTIFY_SOCKET', () => {
    const notifier = createNotifier({}, logger, new Counters());
    expect(notifier.enabled).toBe(false);
    notifier.notify('READY=1');
  });

  it('counts a failed notification instead of crashing', () => {
    const counters = new Counters();
    const notifier = createNotifier({ NOTIFY_SOCKET: path.join(tmp.dir, 'missing.sock') }, logger, counters);
    notifier.notify('READY=1');
    expect(counters.get('errors.e_systemd_notify')).toBe(1);
    notifier.close();
  });

  it('pings the watchdog only while every health check passes', async () => {
    const clock = new ManualClock();
    const notifier = createNotifier({ NOTIFY_SOCKET: socketPath }, logger, new Counters());
    let outboxOk = true;
    const period = watchdogIntervalMs({ WATCHDOG_USEC: '2000000' })!;
    expect(period).toBe(2000);
    const counters = new Counters();
    const dog = new Watchdog(
      notifier,
      period,
      [{ name: 'outbox', check: () => (outboxOk ? undefined : 'stalled') }],
      clock,
      logger,
      counters,
    );
    dog.start();
    await clock.advance(1000);
    await waitFor(() => received.length === 1, { what: 'first ping' });
    outboxOk = false;
    await clock.advance(1000);
    await clock.advance(1000);
    expect(dog.pingCount()).toBe(1);
    expect(counters.get('errors.e_agent_unhealthy')).toBe(2);
    outboxOk = true;
    await clock.advance(1000);
    await waitFor(() => received.length === 2, { what: 'second ping' });
    expect(received).toEqual(['WATCHDOG=1', 'WATCHDOG=1']);
    dog.stop();
    notifier.close();
  });

  it('ignores a watchdog meant for another process', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' }, 2)).toBeUndefined();
  });
});
