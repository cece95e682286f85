import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fixturePath, REPO_ROOT } from '../helpers/fixtures';

export const AGENT_BIN = path.join(REPO_ROOT, 'agent', 'dist', 'cli', 'perch-agent.js');
export const PERCHCTL_BIN = path.join(REPO_ROOT, 'controller', 'dist', 'perchctl', 'main.js');
export const EMBEDDED_BIN = path.join(REPO_ROOT, 'embedded', 'dist', 'main.js');

/** The e2e tests run the built programs; a stale or missing dist is a setup error, said plainly. */
export function requireBuilt(): void {
  for (const bin of [AGENT_BIN, PERCHCTL_BIN, EMBEDDED_BIN]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npx tsc -b\` (npm run build) first`);
  }
}

/** The photographs of faces the embedded demo shows (shipped with @vladmandic/face-api). */
export function facePhotos(): string[] {
  const demo = path.join(
    path.dirname(require.resolve('@vladmandic/face-api/package.json', { paths: [REPO_ROOT] })),
    'demo',
  );
  const photos = fs
    .readdirSync(demo)
    .filter((f) => /^sample\d+\.jpg$/.test(f))
    .sort()
    .map((f) => path.join(demo, f));
  if (photos.length === 0) throw new Error(`no sample photographs in ${demo}`);
  return photos;
}

/** The demo bundle folder: BlazeFace from the fixtures with deploy/demo/blazeface's spec and labels. */
export function writeBlazefaceBundle(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(fixturePath('blazeface.onnx'), path.join(dir, 'model.onnx'));
  for (const f of ['spec.json', 'labels.txt']) {
    fs.copyFileSync(path.join(REPO_ROOT, 'deploy', 'demo', 'blazeface', f), path.join(dir, f));
  }
  return dir;
}

/** A child process whose output is kept for assertions and for the message of a failed test. */
export interface Proc {
  name: string;
  child: ChildProcess;
  /** stdout and stderr interleaved, last 500 kB. */
  output(): string;
  /** stdout only. */
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

/**
 * Every process a test file starts, so that afterAll can stop them all whatever happened: SIGTERM,
 * then SIGKILL for whatever is still there after `graceMs`.
 */
export class Processes {
  private readonly procs: Proc[] = [];

  start(name: string, args: string[], options: SpawnOptions = {}): Proc {
    const child = spawn(process.execPath, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let all = '';
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      all = (all + c.toString()).slice(-500_000);
      out = (out + c.toString()).slice(-500_000);
    });
    child.stderr?.on('data', (c: Buffer) => {
      all = (all + c.toString()).slice(-500_000);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const proc: Proc = {
      name,
      child,
      output: () => all,
      stdout: () => out,
      exited,
      running: () => child.exitCode === null && child.signalCode === null,
    };
    this.procs.push(proc);
    return proc;
  }

  /** Every process started so far. */
  list(): readonly Proc[] {
    return this.procs;
  }

  /** Sends `signal`, waits for the exit; SIGKILL after `graceMs`. */
  async stop(proc: Proc, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
    if (!proc.running()) return;
    const hard = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
    proc.child.kill(signal);
    await proc.exited;
    clearTimeout(hard);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p)));
  }

  /** The output of every process, for the message of a failed assertion. */
  dump(): string {
    return this.procs.map((p) => `----- ${p.name}\n${p.output().slice(-4000)}`).join('\n');
  }
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `perchctl` as a child process (asynchronously: the controller may live in this very
 * process and must keep serving while perchctl waits for it).
 */
export function perchctl(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PERCHCTL_BIN, ...argv], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `perchctl --json ...`, parsed; a non-zero exit is an error that shows what perchctl said. */
export async function perchctlJson<T>(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<T> {
  const r = await perchctl(env, '--json', ...argv);
  if (r.code !== 0) throw new Error(`perchctl ${argv.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/** An environment for perchctl with its own HOME and XDG_CONFIG_HOME (so `login` writes there). */
export function perchctlEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
  };
  return env;
}

/** JSON over HTTP against any controller URL (the embedded launcher's or the harness's). */
export { httpJson as http } from '../helpers/http';

export interface StoredEvent {
  device: string;
  id: string;
  ts: number;
  eventId: string;
  phase: 'start' | 'update' | 'end';
  pipeline: string;
  label: string;
  score: number;
  model?: { name: string; version: string };
}
