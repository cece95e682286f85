import {
  COMMAND_NAMES,
  PerchError,
  type Clock,
  type CommandMessage,
  type CommandName,
  type CommandResultMessage,
  type Logger,
} from '@perch/shared';
import type { CommandLog } from './command-log';
import type { Counters } from './counters';
import { messageId } from './telemetry';

type Scalar = string | number | boolean | null;
export type CommandArgs = Readonly<Record<string, Scalar>>;
export type CommandHandlers = {
  [K in CommandName]: (args: CommandArgs) => Promise<Record<string, Scalar> | undefined>;
};

/**
 * Commands: refused after their expiry, run at most once per id (the id is recorded durably before the
 * command runs, so neither a redelivery nor a crash and redelivery runs it twice), answered on
 * `cmd-result`.
 */
export class CommandDispatcher {
  constructor(
    private readonly handlers: CommandHandlers,
    private readonly log: CommandLog,
    private readonly sendResult: (result: CommandResultMessage) => void,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly counters: Counters,
  ) {}

  private result(
    cmd: CommandMessage,
    name: string,
    error?: PerchError,
    result?: Record<string, Scalar>,
  ): void {
    this.sendResult({
      v: 1,
      id: messageId(),
      ts: this.clock.now(),
      cmdId: cmd.id,
      name,
      ok: !error,
      ...(result ? { result } : {}),
      ...(error ? { error: { code: error.code, message: error.message.slice(0, 2000) } } : {}),
    });
  }

  async dispatch(name: string, cmd: CommandMessage): Promise<void> {
    const now = this.clock.now();
    if (now > cmd.expiresAt) {
      this.counters.error('E_CMD_EXPIRED');
      this.logger.warn('command expired', { code: 'E_CMD_EXPIRED', name, id: cmd.id });
      if (!this.log.seen(cmd.id))
        this.result(cmd, name, new PerchError('E_CMD_EXPIRED', 'command expired before it arrived'));
      return;
    }
    let claimed: boolean;
    try {
      claimed = this.log.claim(cmd.id, name, now, cmd.expiresAt);
    } catch (err) {
      // Without a durable record we cannot promise at-most-once: refuse rather than risk a second run.
      this.counters.error('E_AGENT_STATE_DB');
      this.result(cmd, name, new PerchError('E_AGENT_STATE_DB', `command log unavailable: ${String(err)}`));
      return;
    }
    if (!claimed) {
      this.counters.error('E_CMD_DUPLICATE');
      this.logger.info('duplicate command ignored', { code: 'E_CMD_DUPLICATE', name, id: cmd.id });
      return;
    }
    if (!(COMMAND_NAMES as readonly string[]).includes(name)) {
      this.counters.error('E_CMD_UNKNOWN');
      this.result(cmd, name, new PerchError('E_CMD_UNKNOWN', `unknown command ${name}`));
      return;
    }
    try {
      const out = await this.handlers[name as CommandName](cmd.args ?? {});
      this.counters.inc(`commands.${name}`);
      this.result(cmd, name, undefined, out);
    } catch (err) {
      const error = err instanceof PerchError ? err : new PerchError('E_CMD_FAILED', String(err));
      this.counters.error(error.code);
      this.logger.warn('command failed', { code: error.code, name, err: error.message });
      this.result(cmd, name, error);
    }
  }
}
