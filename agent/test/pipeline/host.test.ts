import './helpers/ort-realm';
import { createLogger, type EventMessage, type PipelineConfig } from '@perch/shared';
import type { ActiveModel } from '../../src/core/pipelines-port';
import { createPipelineHost, inferenceFrom, withPipelineRate } from '../../src/pipeline/host';
import type { Frame, Source } from '../../src/pipeline/types';
import { tempDir } from '../../../test/helpers/tmp';
import { waitFor } from '../../../test/helpers/wait';
import { constantOutputModel } from './helpers/onnx-builder';
import { ManualSource } from './helpers/manual-source';
import sharp from 'sharp';

const logger = createLogger({ namespace: 'test', silent: true });

function active(version: string, label: 0 | 1): ActiveModel {
  const values = [16, 16, 8, 8, label === 0 ? 0.9 : 0, label === 1 ? 0.9 : 0];
  return {
    name: 'det',
    version,
    sha256: version.padStart(64, '0'),
    bundle: {
      name: 'det',
      version,
      model: constantOutputModel({
        input: { name: 'images', shape: [1, 3, 32, 32] },
        outputName: 'out',
        dims: [1, 6, 1],
        values,
      }),
      spec: {
        input: { kind: 'image', name: 'images', layout: 'NCHW', width: 32, height: 32 },
        postprocessor: { kind: 'yolo', params: { version: 'v8' } },
        labels: ['person', 'car'],
      },
    },
  };
}

const config = (over: Partial<PipelineConfig> = {}): PipelineConfig => ({
  id: 'cam',
  model: 'det',
  source: { kind: 'lavfi' },
  options: { threads: 1 },
  ...over,
});

describe('pipeline host', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('starts desired pipelines, hot-swaps a new model, reports a missing one and stops removed ones', async () => {
    const events: EventMessage[] = [];
    const sources: ManualSource<Frame>[] = [];
    const host = createPipelineHost({
      events: { emit: (e) => void events.push(e) },
      snapshotsDir: tmp.dir,
      logger,
      makeSource: () => {
        const s = new ManualSource<Frame>('frame');
        sources.push(s);
        return s as Source;
      },
    });
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#777' } })
      .jpeg()
      .toBuffer();

    await host.apply([config()], new Map([['det', active('1', 0)]]));
    expect(host.stats()).toMatchObject([{ id: 'cam', state: 'running', model: { version: '1' } }]);
    sources[0]!.push({ kind: 'frame', data: jpeg });
    await waitFor(() => host.stats()[0]!.processed === 1);
    expect(events[0]).toMatchObject({ phase: 'start', label: 'person' });
    expect(events[0]!.snapshot).toBeDefined();

    await host.apply([config()], new Map([['det', active('2', 1)]]));
    expect(sources).toHaveLength(1); // same source: swapped, not restarted
    expect(host.stats()[0]).toMatchObject({ state: 'running', model: { version: '2' } });
    sources[0]!.push({ kind: 'frame', data: jpeg });
    await waitFor(() => events.some((e) => e.label === 'car'));

    const ref = await host.snapshot!('cam');
    expect(ref).toMatch(/^cam-/);

    await host.apply([config(), config({ id: 'other', model: 'nope' })], new Map([['det', active('2', 1)]]));
    expect(host.stats().find((s) => s.id === 'other')).toMatchObject({
      state: 'failed',
      lastError: { code: 'E_PIPELINE_MODEL_MISSING' },
    });

    await host.apply([], new Map());
    expect(host.stats()).toEqual([]);
    expect(sources[0]!.stopped).toBe(1);
    await host.stop();
  });

  it('reports a bad source config in stats instead of rejecting', async () => {
    const host = createPipelineHost({ events: { emit: () => undefined }, snapshotsDir: tmp.dir, logger });
    await host.apply([config({ source: { kind: 'no-such-kind' } })], new Map([['det', active('1', 0)]]));
    expect(host.stats()).toMatchObject([
      { id: 'cam', state: 'failed', lastError: { code: 'E_CONFIG_INVALID' } },
    ]);
    await host.stop();
  });

  it('reads threads, providers and warm-up runs from the pipeline options', () => {
    expect(inferenceFrom({ threads: 2, executionProviders: 'cuda, cpu', warmupRuns: 3 })).toEqual({
      intraOpThreads: 2,
      executionProviders: ['cuda', 'cpu'],
      warmupRuns: 3,
    });
    expect(inferenceFrom(undefined, { intraOpThreads: 4 })).toEqual({ intraOpThreads: 4 });
  });
});

describe('withPipelineRate', () => {
  const base = { id: 'p', model: 'm' };
  it('gives camera sources the pipeline rate unless they set their own', () => {
    expect(withPipelineRate({ ...base, fps: 2, source: { kind: 'lavfi', graph: 'testsrc' } })).toEqual({
      kind: 'lavfi',
      graph: 'testsrc',
      fps: 2,
    });
    expect(
      withPipelineRate({ ...base, fps: 2, source: { kind: 'rtsp', url: 'rtsp://x', fps: 5 } }),
    ).toMatchObject({ fps: 5 });
  });

  it('leaves folder, audio and sensor sources alone (they have no rate and refuse unknown keys)', () => {
    for (const kind of ['folder', 'snapshot-url', 'audio', 'sensor-command']) {
      expect(withPipelineRate({ ...base, fps: 2, source: { kind } })).toEqual({ kind });
    }
  });
});
