/**
 * Jest runs each test file in its own vm context, whose typed-array constructors differ from the main
 * context's. onnxruntime-node creates output tensors natively (main context) and then checks them with
 * `instanceof Float32Array` (test context), which fails. Making the test context use the main context's
 * typed arrays (and the code under test with it) avoids that. Import this first in any test that runs
 * onnxruntime; outside jest it changes nothing.
 */
import vm from 'node:vm';

const NAMES = [
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'BigInt64Array',
  'BigUint64Array',
  'ArrayBuffer',
] as const;

const g = globalThis as unknown as Record<string, unknown>;
for (const name of NAMES) {
  const outer = vm.runInThisContext(name) as unknown;
  if (outer !== g[name]) g[name] = outer;
}
