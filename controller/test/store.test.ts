import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openSqliteStore, type Store } from '../src/db/open';

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-store-'));
  store = await openSqliteStore({ file: path.join(dir, 'perch.db') });
});
afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const level = async () =>
  (await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(store.db)).rows[0]?.synchronous;

describe('SQLite store', () => {
  it('runs durable transactions with synchronous=FULL while other transactions queue behind them', async () => {
    const seen: number[] = [];
    const held = () => new Promise((r) => setImmediate(r));
    // Durable and plain transactions interleaved as concurrent requests make them: each waits for the
    // connection; none may fail because another began meanwhile.
    const results = await Promise.all([
      store.durable(async (tx) => {
        seen.push(
          Number((await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(tx)).rows[0]?.synchronous),
        );
        await held();
        return 'durable-1';
      }),
      store.transaction(async (tx) => {
        await sql`SELECT 1`.execute(tx);
        await held();
        return 'plain-1';
      }),
      store.durable(async (tx) => {
        await held();
        seen.push(
          Number((await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(tx)).rows[0]?.synchronous),
        );
        return 'durable-2';
      }),
      store.transaction(async () => {
        await held();
        return 'plain-2';
      }),
    ]);
    expect(results).toEqual(['durable-1', 'plain-1', 'durable-2', 'plain-2']);
    // 2 = FULL inside durable transactions; back to 1 = NORMAL afterwards.
    expect(seen).toEqual([2, 2]);
    expect(await level()).toBe(1);
  });
});
