import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { durationArg, idArg, intArg, tagsArg, timeArg } from '../../src/perchctl/commands/args';
import { parseModelRef } from '../../src/perchctl/commands/assign';
import { bundleParts } from '../../src/perchctl/commands/models';
import { CliFailure, exitCodeForStatus } from '../../src/perchctl/failure';
import { normaliseUrl, resolveProfile } from '../../src/perchctl/profile';

function failure(fn: () => unknown): CliFailure {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliFailure) return err;
    throw err;
  }
  throw new Error('expected a CliFailure');
}

describe('perchctl argument parsing', () => {
  it('reads durations in seconds', () => {
    expect(durationArg('90', 'x')).toBe(90);
    expect(durationArg('15m', 'x')).toBe(900);
    expect(durationArg('2h', 'x')).toBe(7200);
    expect(durationArg('7d', 'x')).toBe(604800);
    expect(durationArg(undefined, 'x')).toBeUndefined();
    expect(failure(() => durationArg('soon', '--ttl'))).toMatchObject({ code: 'E_CLI_USAGE', exitCode: 2 });
  });

  it('reads absolute and relative times', () => {
    const now = Date.UTC(2026, 10, 30, 12);
    expect(timeArg('-1h', 'x', now)).toBe(now - 3_600_000);
    expect(timeArg('2026-11-30T00:00:00Z', 'x', now)).toBe(Date.UTC(2026, 10, 30));
    expect(timeArg('1796083073000', 'x', now)).toBe(1796083073000);
    expect(failure(() => timeArg('yesterday-ish', '--since', now)).code).toBe('E_CLI_USAGE');
  });

  it('checks ids, integers and tag lists', () => {
    expect(idArg('cam-1', 'device id')).toBe('cam-1');
    expect(failure(() => idArg('Cam 1', 'device id')).message).toContain('device id');
    expect(intArg('3', 'n', 1, 5)).toBe(3);
    expect(failure(() => intArg('9', 'n', 1, 5)).code).toBe('E_CLI_USAGE');
    expect(failure(() => intArg('1.5', 'n', 1, 5)).code).toBe('E_CLI_USAGE');
    expect(tagsArg('a, b,,c')).toEqual(['a', 'b', 'c']);
    expect(failure(() => tagsArg('ok,Not OK')).code).toBe('E_CLI_USAGE');
  });

  it('splits model references at the last @', () => {
    expect(parseModelRef('faces@1.2.0')).toEqual({ name: 'faces', version: '1.2.0' });
    expect(failure(() => parseModelRef('faces')).code).toBe('E_CLI_USAGE');
    expect(failure(() => parseModelRef('faces@')).code).toBe('E_CLI_USAGE');
    expect(failure(() => parseModelRef('@1')).code).toBe('E_CLI_USAGE');
  });

  it('maps HTTP statuses to documented exit codes', () => {
    expect([401, 403, 404, 409, 400, 413, 500, 503].map(exitCodeForStatus)).toEqual([4, 4, 5, 6, 6, 6, 7, 7]);
  });
});

describe('perchctl profile', () => {
  it('prefers flags over the environment over the login file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perchctl-'));
    const file = path.join(dir, 'p.json');
    fs.writeFileSync(file, JSON.stringify({ url: 'http://file:1', token: 'file-token' }));
    const env = { PERCHCTL_CONFIG: file, PERCH_TOKEN: 'env-token' };
    expect(resolveProfile({}, env)).toEqual({ url: 'http://file:1', token: 'env-token' });
    expect(resolveProfile({ url: 'http://flag:2/' }, env)).toEqual({
      url: 'http://flag:2',
      token: 'env-token',
    });
    fs.writeFileSync(file, 'not json');
    expect(failure(() => resolveProfile({}, env)).code).toBe('E_CLI_CONFIG');
    fs.rmSync(dir, { recursive: true });
  });

  it('refuses URLs that are not http(s)', () => {
    expect(failure(() => normaliseUrl('ftp://x')).code).toBe('E_CLI_USAGE');
    expect(failure(() => normaliseUrl('not a url')).code).toBe('E_CLI_USAGE');
  });
});

describe('bundle folders', () => {
  it('need model.onnx, spec.json and labels.txt, and take sample.bin only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-'));
    expect(failure(() => bundleParts(dir)).code).toBe('E_CLI_BUNDLE');
    for (const f of ['model.onnx', 'spec.json', 'labels.txt', 'sample.bin', 'notes.md'])
      fs.writeFileSync(path.join(dir, f), 'x');
    expect(bundleParts(dir).map((p) => [p.name, path.basename(p.file!)])).toEqual([
      ['model', 'model.onnx'],
      ['spec', 'spec.json'],
      ['labels', 'labels.txt'],
      ['sample', 'sample.bin'],
    ]);
    // A picture is not a sample: named before anything is uploaded.
    fs.writeFileSync(path.join(dir, 'sample.jpg'), 'x');
    const wrong = failure(() => bundleParts(dir));
    expect(wrong.code).toBe('E_CLI_BUNDLE');
    expect(wrong.message).toMatch(/sample\.jpg: the sample must be sample\.bin/);
    expect(failure(() => bundleParts(path.join(dir, 'missing'))).code).toBe('E_CLI_BUNDLE');
    fs.rmSync(dir, { recursive: true });
  });
});
