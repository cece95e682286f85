import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

/** The part of a child process a source uses; tests may hand in a fake at this seam. */
export interface ChildLike {
  readonly pid?: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'close', fn: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'error', fn: (err: Error) => void): this;
}

/** The spawn seam: ffmpeg and sensor commands are started only through this. */
export type SpawnFn = (command: string, args: readonly string[]) => ChildLike;

/** Spawns with stdin closed and stdout/stderr piped; never through a shell. */
export const defaultSpawn: SpawnFn = (command, args) =>
  spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
