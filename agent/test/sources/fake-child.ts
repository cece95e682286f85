import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildLike, SpawnFn } from '../../src/sources/spawn';

/** A child process at the spawn seam: the test writes its stdout/stderr and decides when it exits. */
export class FakeChild extends EventEmitter implements ChildLike {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly pid = 4242;
  killedWith: NodeJS.Signals | undefined;
  private closed = false;

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.killedWith = signal;
    this.exit(null, signal);
    return true;
  }

  /** Ends the process the way node reports it: streams end, then `close`. */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.closed) return;
    this.closed = true;
    this.stdout.end();
    this.stderr.end();
    setImmediate(() => this.emit('close', code, signal));
  }
}

export function fakeSpawn(): {
  spawn: SpawnFn;
  children: FakeChild[];
  calls: { command: string; args: readonly string[] }[];
} {
  const children: FakeChild[] = [];
  const calls: { command: string; args: readonly string[] }[] = [];
  const spawn: SpawnFn = (command, args) => {
    calls.push({ command, args });
    const child = new FakeChild();
    children.push(child);
    return child;
  };
  return { spawn, children, calls };
}
