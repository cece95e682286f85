import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type PipelineConfig } from '@perch/shared';
import type { ActiveModel } from '../../../src/core/pipelines-port';
import { FileHaStateStore, toHaPipeline } from '../../../src/integrations/homeassistant/agent-bridge';

const logger = createLogger({ namespace: 'test:ha-bridge', silent: true });

const pipeline = (extra: Partial<PipelineConfig> = {}): PipelineConfig => ({
  id: 'door',
  model: 'det',
  source: { kind: 'rtsp' },
  ...extra,
});
const model = (labels: string[], spec: unknown = {}): ActiveModel => ({
  name: 'det',
  version: '1',
  sha256: 'a'.repeat(64),
  bundle: { name: 'det', version: '1', model: new Uint8Array(), spec, labels },
});

describe('toHaPipeline', () => {
  it("exposes the rule labels when the pipeline has them, else the model's", () => {
    expect(toHaPipeline(pipeline({ rules: { labels: ['person'] } }), model(['cat', 'dog'])).labels).toEqual([
      'person',
    ]);
    expect(toHaPipeline(pipeline(), model(['cat', 'dog'])).labels).toEqual(['cat', 'dog']);
  });

  it("prefers the spec's own labels over the labels file, and has none without a model", () => {
    expect(toHaPipeline(pipeline(), model(['file'], { labels: ['spec'] })).labels).toEqual(['spec']);
    expect(toHaPipeline(pipeline(), undefined).labels).toEqual([]);
  });

  it('offers a snapshot image only for frame sources with snapshots on', () => {
    expect(toHaPipeline(pipeline(), undefined).snapshots).toBe(true);
    expect(toHaPipeline(pipeline({ outputs: { snapshots: false } }), undefined).snapshots).toBe(false);
    expect(toHaPipeline(pipeline({ source: { kind: 'audio' } }), undefined).snapshots).toBe(false);
    expect(toHaPipeline(pipeline({ source: { kind: 'sensor-file' } }), undefined).snapshots).toBe(false);
  });
});

describe('FileHaStateStore', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-ha-store-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps what was announced across instances', async () => {
    const file = path.join(dir, 'a.json');
    await new FileHaStateStore(file, logger).save({
      components: { x_fps: 'sensor' },
      removed: { y: 'image' },
    });
    expect(await new FileHaStateStore(file, logger).load()).toEqual({
      components: { x_fps: 'sensor' },
      removed: { y: 'image' },
    });
  });

  it('starts afresh from a missing or damaged file, dropping values of the wrong type', async () => {
    expect(await new FileHaStateStore(path.join(dir, 'none.json'), logger).load()).toBeUndefined();
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"components":');
    expect(await new FileHaStateStore(bad, logger).load()).toBeUndefined();
    const odd = path.join(dir, 'odd.json');
    fs.writeFileSync(odd, '{"components":{"a":"sensor","b":7},"removed":null}');
    expect(await new FileHaStateStore(odd, logger).load()).toEqual({
      components: { a: 'sensor' },
      removed: {},
    });
  });
});
