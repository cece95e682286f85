import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type AgentDatabase = Database.Database;

/**
 * Opens the agent database: WAL so that readers never block the writer, synchronous=FULL because the
 * outbox and the command log must survive a power cut (their write rate is small).
 */
export function openAgentDatabase(file: string): AgentDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 2000');
  db.exec(`
    CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      kind TEXT NOT NULL,
      topic TEXT NOT NULL,
      msg_id TEXT NOT NULL,
      payload BLOB NOT NULL,
      bytes INTEGER NOT NULL,
      priority INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, seq);
    CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority DESC, seq);
    CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS executed_commands (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    );
  `);
  return db;
}
