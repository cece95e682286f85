import { PerchError } from '@perch/shared';

/** The entries of a model bundle (a plain ustar archive, see controller/README.md). */
export interface BundleFiles {
  model: Buffer;
  spec: Buffer;
  labels: Buffer;
  sample?: Buffer;
}

const ALLOWED = new Set(['model.onnx', 'spec.json', 'labels.txt', 'sample.bin']);
const BLOCK = 512;

function invalid(message: string): PerchError {
  return new PerchError('E_UPDATE_BUNDLE_INVALID', message);
}

function readString(buf: Buffer, start: number, length: number): string {
  const slice = buf.subarray(start, start + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end === -1 ? slice.length : end).toString('utf8');
}

function readOctal(buf: Buffer, start: number, length: number): number {
  const text = readString(buf, start, length).trim();
  if (!/^[0-7]+$/.test(text)) throw invalid(`bad octal field ${JSON.stringify(text)} in tar header`);
  return parseInt(text, 8);
}

/**
 * Parses the bundle archive from memory. Only the four known regular files are accepted, each at most
 * once; anything else (directories, links, unknown names, a truncated archive) is a coded error.
 */
export function parseBundle(tar: Buffer): BundleFiles {
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    const checksum = readOctal(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== checksum) throw invalid('tar header checksum mismatch');
    const prefix = readString(header, 345, 155);
    const base = readString(header, 0, 100);
    const name = prefix ? `${prefix}/${base}` : base;
    const type = String.fromCharCode(header[156]!);
    const size = readOctal(header, 124, 12);
    if (type !== '0' && type !== '\0') throw invalid(`bundle entry ${name} is not a regular file`);
    if (!ALLOWED.has(name)) throw invalid(`unexpected bundle entry ${JSON.stringify(name.slice(0, 100))}`);
    if (files.has(name)) throw invalid(`bundle entry ${name} appears twice`);
    const start = offset + BLOCK;
    if (start + size > tar.length) throw invalid(`bundle entry ${name} is truncated`);
    files.set(name, tar.subarray(start, start + size));
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  const model = files.get('model.onnx');
  const spec = files.get('spec.json');
  const labels = files.get('labels.txt');
  if (!model || !spec || !labels) throw invalid('bundle lacks model.onnx, spec.json or labels.txt');
  const sample = files.get('sample.bin');
  return sample ? { model, spec, labels, sample } : { model, spec, labels };
}

/** Builds a ustar archive (tests and the bench use it to make bundles). */
export function buildBundle(entries: Array<[name: string, data: Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of entries) {
    const header = Buffer.alloc(BLOCK, 0);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100, 8, 'ascii');
    header.write('0000000\0', 108, 8, 'ascii');
    header.write('0000000\0', 116, 8, 'ascii');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
    header.write('00000000000\0', 136, 12, 'ascii');
    header.write('        ', 148, 8, 'ascii');
    header.write('0', 156, 1, 'ascii');
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    parts.push(header, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}
