import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../../../test/helpers/tmp';
import { buildBundle, parseBundle } from '../../src/core/bundle';
import { Counters } from '../../src/core/counters';
import { ModelStore } from '../../src/core/model-store';
import { silentLogger } from './helpers';

function bundle(tag: string) {
  const tar = buildBundle([
    ['model.onnx', Buffer.from(`model-${tag}`)],
    ['spec.json', Buffer.from('{}')],
    ['labels.txt', Buffer.from('face\n')],
  ]);
  return { tar, sha256: crypto.createHash('sha256').update(tar).digest('hex') };
}

describe('ModelStore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: ModelStore;
  beforeEach(() => {
    tmp = tempDir();
    store = new ModelStore(path.join(tmp.dir, 'models'), silentLogger(), new Counters());
  });
  afterEach(() => tmp.cleanup());

  function stage(tag: string, securityVersion = 0) {
    const b = bundle(tag);
    const file = path.join(tmp.dir, `${tag}.verified`);
    fs.writeFileSync(file, b.tar);
    store.stage('faces', b.sha256, file);
    return { sha256: b.sha256, version: tag, securityVersion };
  }

  it('stages, activates, and keeps the old current as previous', async () => {
    const v1 = stage('1.0.0', 1);
    store.activate('faces', v1);
    const v2 = stage('2.0.0', 2);
    store.activate('faces', v2);
    expect(store.pointers('faces')).toEqual({ current: v2, previous: v1, securityVersion: 2 });
    const loaded = await store.load('faces', v2);
    expect(loaded.files.model.toString()).toBe('model-2.0.0');
  });

  it('never lowers the security version', () => {
    store.activate('faces', stage('2.0.0', 2));
    expect(() => store.activate('faces', stage('1.0.0', 1))).toThrow(
      expect.objectContaining({ code: 'E_UPDATE_SECURITY_VERSION' }),
    );
    store.revert('faces');
    expect(store.pointers('faces').securityVersion).toBe(2);
  });

  it('refuses a tampered version when loading it', async () => {
    const v1 = stage('1.0.0');
    const file = store.versionPath('faces', v1.sha256);
    const bytes = fs.readFileSync(file);
    bytes[600] = bytes[600]! ^ 1;
    fs.writeFileSync(file, bytes);
    await expect(store.load('faces', v1)).rejects.toMatchObject({ code: 'E_UPDATE_MODEL_TAMPERED' });
  });

  it('counts trial attempts durably and remembers a passed trial', () => {
    const v1 = stage('1.0.0');
    store.beginTrial('faces', v1);
    expect(store.beginTrial('faces', v1).attempts).toBe(2);
    store.passTrial('faces', v1.sha256);
    expect(store.pointers('faces').trial).toMatchObject({ attempts: 2, passed: true });
    store.clearTrial('faces');
    expect(store.pointers('faces').trial).toBeUndefined();
  });

  it('collects versions that are neither current nor previous', () => {
    const v1 = stage('1.0.0');
    const v2 = stage('2.0.0');
    const v3 = stage('3.0.0');
    store.activate('faces', v1);
    store.activate('faces', v2);
    expect(store.collect('faces')).toEqual([v3.sha256]);
    expect(store.hasVersion('faces', v1.sha256) && store.hasVersion('faces', v2.sha256)).toBe(true);
  });

  it('reads corrupt pointers as empty and counts it', () => {
    fs.mkdirSync(path.join(tmp.dir, 'models', 'faces'), { recursive: true });
    fs.writeFileSync(path.join(tmp.dir, 'models', 'faces', 'pointers.json'), '{"current":');
    expect(store.pointers('faces')).toEqual({ securityVersion: 0 });
  });
});

describe('parseBundle', () => {
  it('round-trips the bundle entries', () => {
    const files = parseBundle(bundle('x').tar);
    expect(files.labels.toString()).toBe('face\n');
    expect(files.sample).toBeUndefined();
  });

  it('refuses unknown entries, missing parts and truncation with a code', () => {
    const extra = buildBundle([['../etc/passwd', Buffer.from('x')]]);
    expect(() => parseBundle(extra)).toThrow(expect.objectContaining({ code: 'E_UPDATE_BUNDLE_INVALID' }));
    const missing = buildBundle([['model.onnx', Buffer.from('x')]]);
    expect(() => parseBundle(missing)).toThrow(expect.objectContaining({ code: 'E_UPDATE_BUNDLE_INVALID' }));
    const whole = bundle('y').tar;
    expect(() => parseBundle(whole.subarray(0, 700))).toThrow(
      expect.objectContaining({ code: 'E_UPDATE_BUNDLE_INVALID' }),
    );
  });
});
