import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh temporary folder; `cleanup()` removes it (call it in afterEach/afterAll). */
export function tempDir(prefix = 'perch-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
