import fs from 'node:fs';
import path from 'node:path';

/** fsync a folder so that a rename or create inside it survives a power cut. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** fsync one file by path. */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write a file so that after a power cut it holds either the old or the new content, never a mix:
 * write a temporary sibling, fsync it, rename it over the target, fsync the folder.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
  fsyncDir(dir);
}

/** Reads a JSON file; undefined when missing, throws on malformed content (the caller decides). */
export function readJsonIfExists(file: string, maxBytes = 4 * 1024 * 1024): unknown {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (stat.size > maxBytes) throw new Error(`${file} is larger than ${maxBytes} bytes`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
}
