import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Transaction } from 'kysely';
import { PerchError } from '@perch/shared';
import type { Database } from './schema';
import { migrationProvider } from './migrations';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

/**
 * The storage handle domain code uses. `durable` runs a transaction that must survive a power cut
 * (enrollment, revocation, desired state): on SQLite it switches `synchronous` to FULL around it; other
 * dialects are always synchronous and run it as a plain transaction.
 */
export interface Store {
  readonly db: Db;
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  durable<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * SQLite only: a cached prepared statement on the store's single connection, for hot paths (ingest).
   * Call it only inside `transaction()`: kysely holds the connection then, so the statement runs inside
   * that transaction. The SQL passed must be portable; other dialects leave this undefined and callers
   * fall back to kysely queries.
   */
  readonly prepared?: (sql: string) => SqliteStatement;
}

export interface SqliteStatement {
  /** `changes`: rows inserted, updated or deleted (an ON CONFLICT DO NOTHING skip is not counted). */
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface SqliteOptions {
  /** Database file, or ':memory:'. */
  file: string;
  busyTimeoutMs?: number;
}

export async function openSqliteStore(options: SqliteOptions): Promise<Store> {
  const raw = new SqliteDatabase(options.file);
  raw.pragma('journal_mode = WAL');
  raw.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  // NORMAL is crash-safe in WAL mode but may lose the last commits on power loss; durable() raises it.
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
  await migrate(db);
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    db,
    transaction: (fn) => db.transaction().execute(fn),
    // SQLite refuses to change `synchronous` while any transaction is open on the connection. Holding
    // kysely's one connection for the whole pragma-transaction-pragma sequence keeps every other
    // transaction out until the level is back to NORMAL; switching outside that lock threw whenever
    // another request's transaction had begun meanwhile, after this one had committed (an enrollment
    // answered 500 with its token use and device row already stored).
    durable: (fn) =>
      db.connection().execute(async (conn) => {
        raw.pragma('synchronous = FULL');
        try {
          return await conn.transaction().execute(fn);
        } finally {
          raw.pragma('synchronous = NORMAL');
        }
      }),
    close: () => db.destroy(),
    prepared: (text: string) => {
      let stmt = statements.get(text);
      if (!stmt) {
        stmt = raw.prepare(text);
        statements.set(text, stmt);
      }
      return stmt;
    },
  };
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new PerchError(
      'E_DB_MIGRATION',
      `database migration ${failed} failed`,
      { migration: failed },
      { cause: error },
    );
  }
}
