import path from 'node:path';

// scripts/fixtures.js is plain CommonJS so that it runs before anything is built.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureFixtures } = require('../../scripts/fixtures') as {
  ensureFixtures: () => Record<string, string>;
};

export type FixtureName =
  | 'blazeface.onnx'
  | 'silero_vad.onnx'
  | 'ppocr_det.onnx'
  | 'ppocr_rec.onnx'
  | 'ppocr_cls.onnx'
  | 'ppocr_keys.txt';

let cache: Record<string, string> | undefined;

/** Absolute path of a real model from the fixture cache (fetched on first use). */
export function fixturePath(name: FixtureName): string {
  cache ??= ensureFixtures();
  const file = cache[name];
  if (!file) throw new Error(`unknown fixture ${name}`);
  return file;
}

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
