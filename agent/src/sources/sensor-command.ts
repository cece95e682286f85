import type { SensorSourceConfig } from './config';
import { backoffOf, type ResolvedDeps } from './deps';
import { ProcessSupervisor } from './process-supervisor';
import { SensorSource } from './sensor-source';

type Config = Extract<SensorSourceConfig, { kind: 'sensor-command' }>;

/** Readings from a command's stdout, one per line; the command is restarted with backoff when it exits. */
export class SensorCommandSource extends SensorSource {
  private readonly supervisor: ProcessSupervisor;

  constructor(config: Config, deps: ResolvedDeps) {
    super(config, deps);
    const [command, ...args] = config.command as [string, ...string[]];
    this.supervisor = new ProcessSupervisor({
      command,
      args,
      spawn: deps.spawn,
      clock: deps.clock,
      backoff: backoffOf(config),
      random: deps.random,
      stallTimeoutMs: config.stallTimeoutMs,
      finite: config.onExit === 'end',
      health: this.tracker,
      logger: deps.logger,
      onSpawn: () => this.resetLines(),
      onData: (chunk) => this.feedBytes(chunk),
      onExit: () => this.flushBytes(),
    });
  }

  protected begin(): Promise<void> {
    this.supervisor.start();
    return Promise.resolve();
  }

  protected end(): Promise<void> {
    return this.supervisor.stop();
  }

  protected override stderrTail(): readonly string[] {
    return this.supervisor.stderr.get();
  }

  get pid(): number | undefined {
    return this.supervisor.pid;
  }
}
