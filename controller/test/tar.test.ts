import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTar, writeTar } from '../src/models/tar';

describe('bundle tar', () => {
  const entries = [
    { name: 'model.onnx', data: Buffer.alloc(1500, 7) },
    { name: 'spec.json', data: Buffer.from('{"a":1}') },
    { name: 'labels.txt', data: Buffer.from('face\n') },
    { name: 'sample.bin', data: Buffer.alloc(0) },
  ];

  it('round-trips and is byte-for-byte deterministic', () => {
    const a = writeTar(entries);
    expect(a.equals(writeTar(entries))).toBe(true);
    expect(a.length % 512).toBe(0);
    expect(readTar(a).map((e) => [e.name, e.data.length])).toEqual(
      entries.map((e) => [e.name, e.data.length]),
    );
  });

  it('is a valid ustar archive for the system tar', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-tar-'));
    try {
      const file = path.join(dir, 'bundle.tar');
      fs.writeFileSync(file, writeTar(entries));
      expect(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n')).toEqual(
        entries.map((e) => e.name),
      );
      execFileSync('tar', ['-xf', file, '-C', dir]);
      expect(fs.readFileSync(path.join(dir, 'model.onnx')).equals(entries[0]!.data)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
