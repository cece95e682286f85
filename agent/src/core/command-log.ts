import type { AgentDatabase } from './database';

/**
 * Durable record of executed command ids. A command id is claimed in the database before the command
 * runs, so a crash and a QoS 1 redelivery can never run it twice: at most once.
 */
export class CommandLog {
  private readonly claimStmt;
  private readonly pruneStmt;
  private readonly hasStmt;

  constructor(db: AgentDatabase) {
    this.claimStmt = db.prepare(
      'INSERT OR IGNORE INTO executed_commands (id, name, received_at, expires_at) VALUES (?, ?, ?, ?)',
    );
    this.pruneStmt = db.prepare('DELETE FROM executed_commands WHERE expires_at < ?');
    this.hasStmt = db.prepare<[string], { id: string }>('SELECT id FROM executed_commands WHERE id = ?');
  }

  /** True the first time an id is seen; false ever after (until it is pruned past its expiry). */
  claim(id: string, name: string, now: number, expiresAt: number): boolean {
    return this.claimStmt.run(id, name, now, expiresAt).changes === 1;
  }

  seen(id: string): boolean {
    return this.hasStmt.get(id) !== undefined;
  }

  /**
   * Forgets ids whose command expired before `before`. Safe: a redelivered expired command is refused
   * for being expired, so its id is no longer needed to refuse it.
   */
  prune(before: number): number {
    return this.pruneStmt.run(before).changes;
  }
}
