import { tempDir } from '../../../test/helpers/tmp';
import { CommandLog } from '../../src/core/command-log';
import { openAgentDatabase } from '../../src/core/database';

describe('CommandLog', () => {
  it('claims an id once, across a reopen of the database', () => {
    const tmp = tempDir();
    try {
      const db = openAgentDatabase(`${tmp.dir}/agent.db`);
      const log = new CommandLog(db);
      expect(log.claim('cmd-000001', 'report-now', 1, 100)).toBe(true);
      expect(log.claim('cmd-000001', 'report-now', 2, 100)).toBe(false);
      db.close();
      const again = new CommandLog(openAgentDatabase(`${tmp.dir}/agent.db`));
      expect(again.claim('cmd-000001', 'report-now', 3, 100)).toBe(false);
      expect(again.prune(101)).toBe(1);
      expect(again.seen('cmd-000001')).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });
});
