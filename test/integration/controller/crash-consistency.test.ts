import { execFileSync, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '@perch/controller';
import { tempDir } from '../../helpers/tmp';
import { REPO_ROOT } from '../../helpers/fixtures';

jest.setTimeout(120_000);

/**
 * RELIABILITY 22: a writer killed with SIGKILL at arbitrary moments, many times, leaves a database that
 * passes the integrity check, and every multi-row change is all or nothing.
 */
describe('controller database under SIGKILL', () => {
  beforeAll(() => {
    // The writer runs the compiled controller; bring it up to date. A build error elsewhere in the
    // repository leaves the last good build in place, which the writer can still use.
    try {
      execFileSync(
        process.execPath,
        [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-b', path.join(REPO_ROOT, 'controller')],
        {
          stdio: 'ignore',
        },
      );
    } catch {
      if (!existsSync(path.join(REPO_ROOT, 'controller/dist/index.js')))
        throw new Error('controller does not build and has no earlier build');
    }
  });

  it('passes the integrity check and keeps transactions whole after 8 kills mid-write', async () => {
    const { dir, cleanup } = tempDir('perch-crash-');
    const file = path.join(dir, 'controller.db');
    try {
      await (await openSqliteStore({ file })).close();
      for (let run = 0; run < 8; run++) {
        const child = fork(path.join(__dirname, 'fixtures/crash-writer.js'), [file, String(run)], {
          stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        });
        await new Promise<void>((resolve, reject) => {
          child.once('message', () => resolve());
          child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
        });
        // Let it write for a varying number of its own transactions' worth of time, then kill it.
        const db = new Database(file, { readonly: true, fileMustExist: true });
        const target = (run + 1) * 3;
        for (;;) {
          const n = (
            db.prepare('SELECT count(*) AS n FROM devices WHERE id LIKE ?').get(`crash-${run}-%`) as {
              n: number;
            }
          ).n;
          if (n >= target) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        db.close();
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      const db = new Database(file);
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const devices = (db.prepare('SELECT count(*) AS n FROM devices').get() as { n: number }).n;
        const audits = (
          db.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'device.enroll'").get() as {
            n: number;
          }
        ).n;
        const tags = (db.prepare('SELECT count(*) AS n FROM device_tags').get() as { n: number }).n;
        expect(devices).toBeGreaterThanOrEqual(8 * 3);
        expect(audits).toBe(devices);
        expect(tags).toBe(2 * devices);
        // Telemetry batches are transactions too: per device either none or all 200 of a flushed batch.
        const partial = db
          .prepare('SELECT device_id, count(*) AS n FROM telemetry GROUP BY device_id HAVING n % 200 != 0')
          .all();
        expect(partial).toEqual([]);
      } finally {
        db.close();
      }
    } finally {
      cleanup();
    }
  });
});
