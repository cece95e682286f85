import { PassThrough } from 'node:stream';
import { main } from '../../../controller/src/perchctl/main';

export interface PerchctlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs perchctl in-process, as its bin would (same `main`, captured streams). `env` is read at each
 * call, so suites can set it up in `beforeAll`.
 */
export function perchctlRunner(env: () => NodeJS.ProcessEnv) {
  async function ctl(...argv: string[]): Promise<PerchctlRun> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await main(argv, { stdout, stderr, env: env() });
    return { code, stdout: out, stderr: err };
  }

  /** `--json` output of a command that must succeed. */
  async function json<T>(...argv: string[]): Promise<T> {
    const r = await ctl('--json', ...argv);
    if (r.code !== 0) throw new Error(`perchctl ${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  return { ctl, json };
}
