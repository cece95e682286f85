import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';

const CLI = path.join(REPO_ROOT, 'agent', 'dist', 'cli', 'perch-agent.js');

function run(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // No PERCH_* variable of the surrounding shell leaks into the agent.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PERCH_')));
  const child = spawn(process.execPath, [CLI], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The real perch-agent binary (agent/dist): a start that cannot enroll ends at once with status 2. */
(fs.existsSync(CLI) ? describe : describe.skip)('perch-agent start without enrollment settings', () => {
  it.each([
    [{ PERCH_ENROLL_TOKEN: 'pet_x' }, ['controllerUrl']],
    [{ PERCH_CONTROLLER_URL: 'http://127.0.0.1:9' }, ['enrollToken']],
  ])('env %j: exits 2 with E_AGENT_NOT_ENROLLED naming %j and a log line', async (env, missing) => {
    const tmp = tempDir('perch-cli-');
    try {
      const r = await run({ ...env, PERCH_STATE_DIR: tmp.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('E_AGENT_NOT_ENROLLED');
      const line = r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { message?: string; code?: string; level?: string; err?: string })
        .find((l) => l.message === 'agent start failed');
      expect(line).toMatchObject({ level: 'error', code: 'E_AGENT_NOT_ENROLLED' });
      for (const key of missing) expect(line?.err).toContain(key);
      expect(fs.existsSync(path.join(tmp.dir, 'identity', 'credentials.json'))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });
});
