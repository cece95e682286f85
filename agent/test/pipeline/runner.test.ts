import './helpers/ort-realm';
import fs from 'node:fs';
import sharp from 'sharp';
import {
  createLogger,
  eventSchema,
  ManualClock,
  type EventMessage,
  type ModelSpecInput,
} from '@perch/shared';
import { createPipeline } from '../../src/pipeline/runner';
import type {
  EventSink,
  Frame,
  ModelBundle,
  PipelineHandle,
  PipelineOptions,
  SensorWindow,
  Source,
  SourceItem,
} from '../../src/pipeline/types';
import { tempDir } from '../../../test/helpers/tmp';
import { waitFor } from '../../../test/helpers/wait';
import { constantOutputModel, identityModel, throwingModel } from './helpers/onnx-builder';
import { ManualSource } from './helpers/manual-source';

const logger = createLogger({ namespace: 'test', silent: true });
const IMAGE_INPUT = {
  kind: 'image',
  name: 'images',
  layout: 'NCHW',
  width: 32,
  height: 32,
  resize: 'letterbox',
} as const;

/** A YOLOv8-style model that always sees one object of class `cls` in the middle of the input. */
function yoloBundle(version: string, cls: 0 | 1): ModelBundle {
  const spec: ModelSpecInput = {
    input: IMAGE_INPUT,
    postprocessor: { kind: 'yolo', params: { version: 'v8' } },
    labels: ['person', 'car'],
  };
  const values = [16, 16, 8, 8, cls === 0 ? 0.9 : 0, cls === 1 ? 0.9 : 0];
  const model = constantOutputModel({
    input: { name: 'images', shape: [1, 3, 32, 32] },
    outputName: 'out',
    dims: [1, 6, 1],
    values,
  });
  return { name: 'yolo', version, model, spec };
}

class Collect implements EventSink {
  readonly events: EventMessage[] = [];
  emit(e: EventMessage): void {
    this.events.push(e);
  }
}

let jpeg: Buffer;
let black: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#a0a0a0' } })
    .jpeg()
    .toBuffer();
  black = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#000000' } })
    .png()
    .toBuffer();
});

const frame = (data: Buffer): Omit<Frame, 'seq' | 'ts'> => ({ kind: 'frame', data });

describe('pipeline runner', () => {
  const running: PipelineHandle[] = [];
  const dirs: { cleanup: () => void }[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
    dirs.splice(0).forEach((d) => d.cleanup());
  });

  function start<T extends SourceItem>(opts: Partial<PipelineOptions> & { source: ManualSource<T> }) {
    const p = createPipeline(
      { id: 'cam-1', bundle: yoloBundle('1', 0), sinks: [], ...opts, source: opts.source as Source },
      { logger },
    );
    running.push(p);
    return p;
  }

  it('runs frames through the model to one start event with a snapshot, and an end when it stops', async () => {
    const tmp = tempDir();
    dirs.push(tmp);
    const source = new ManualSource<Frame>('frame');
    const sink = new Collect();
    const p = start({ source, sinks: [sink], snapshots: { dir: tmp.dir } });
    await p.start();
    for (let i = 0; i < 5; i++) {
      source.push(frame(jpeg));
      await waitFor(() => p.stats().processed === i + 1);
    }
    await p.stop();
    expect(sink.events.map((e) => e.phase)).toEqual(['start', 'end']);
    for (const e of sink.events) expect(eventSchema.safeParse(e).success).toBe(true);
    const [startEv] = sink.events;
    expect(startEv).toMatchObject({
      pipeline: 'cam-1',
      label: 'person',
      model: { name: 'yolo', version: '1' },
    });
    // Box centre in the middle of the 64x48 frame.
    expect(startEv!.box!.x + startEv!.box!.w / 2).toBeCloseTo(0.5, 2);
    const snap = fs.readdirSync(tmp.dir);
    expect(snap).toEqual([`${startEv!.snapshot}.jpg`]);
    const meta = await sharp(fs.readFileSync(`${tmp.dir}/${snap[0]}`)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 64, 48]);
    const s = p.stats();
    expect(s).toMatchObject({
      state: 'stopped',
      received: 5,
      processed: 5,
      dropped: 0,
      detections: 5,
      events: 2,
      snapshots: 1,
    });
    expect(s.latency.infer.count).toBe(5);
    expect(s.latency.total.p99).toBeGreaterThanOrEqual(s.latency.total.p50);
  });

  it('drops the oldest frames when inference falls behind and counts them', async () => {
    const source = new ManualSource<Frame>('frame');
    const p = start({ source, queueSize: 1 });
    await p.start();
    for (let i = 0; i < 30; i++) source.push(frame(jpeg));
    await waitFor(() => {
      const s = p.stats();
      return s.processed + s.dropped === 30;
    });
    const s = p.stats();
    expect(s.received).toBe(30);
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.processed).toBeGreaterThanOrEqual(2);
  });

  it('counts a corrupt image as E_PIPELINE_DECODE and goes on with the next frames', async () => {
    const source = new ManualSource<Frame>('frame');
    const p = start({ source });
    await p.start();
    source.push(frame(Buffer.from('definitely not a jpeg')));
    await waitFor(() => p.stats().errors.E_PIPELINE_DECODE);
    source.push(frame(jpeg.subarray(0, 100)));
    await waitFor(() => p.stats().errors.E_PIPELINE_DECODE?.count === 2);
    source.push(frame(jpeg));
    await waitFor(() => p.stats().processed === 1);
    expect(p.stats()).toMatchObject({ state: 'running', lastError: { code: 'E_PIPELINE_DECODE' } });
  });

  it('counts a model that throws as E_PIPELINE_INFERENCE and keeps running', async () => {
    const source = new ManualSource<Frame>('frame');
    const spec: ModelSpecInput = {
      input: { ...IMAGE_INPUT, resize: 'stretch' },
      postprocessor: { kind: 'raw' },
    };
    const model = throwingModel({ name: 'images', shape: [1, 3, 32, 32] });
    const p = start({ source, bundle: { name: 'boom', version: '1', model, spec } });
    await p.start();
    source.push(frame(jpeg)); // grey: the model throws
    await waitFor(() => p.stats().errors.E_PIPELINE_INFERENCE);
    source.push(frame(black)); // black: it answers
    await waitFor(() => p.stats().processed === 1);
    source.push(frame(jpeg));
    await waitFor(() => p.stats().errors.E_PIPELINE_INFERENCE?.count === 2);
    const s = p.stats();
    expect(s.state).toBe('running');
    expect(s.tensors?.[0]).toMatchObject({ name: 'y', min: 1, max: 1 });
  });

  it('switches models without dropping a frame, the new one warmed before it takes over', async () => {
    const source = new ManualSource<Frame>('frame');
    const sink = new Collect();
    const p = start({ source, sinks: [sink], queueSize: 2 });
    await p.start();
    let pushed = 0;
    const feed = (async () => {
      while (pushed < 40) {
        source.push(frame(jpeg));
        pushed++;
        const target = pushed;
        await waitFor(() => p.stats().processed >= target, { intervalMs: 2 });
      }
    })();
    await waitFor(() => pushed >= 10, { intervalMs: 2 });
    await p.swapModel(yoloBundle('2', 1));
    await feed;
    const s = p.stats();
    expect(s).toMatchObject({ received: 40, processed: 40, dropped: 0, model: { version: '2' } });
    expect(
      sink.events.filter((e) => e.phase === 'start').map((e) => `${e.label}@${e.model?.version}`),
    ).toEqual(['person@1', 'car@2']);
  });

  it('keeps the running model when the new one does not fit its spec', async () => {
    const source = new ManualSource<Frame>('frame');
    const p = start({ source });
    await p.start();
    const bad = {
      ...yoloBundle('2', 1),
      spec: { input: { ...IMAGE_INPUT, name: 'input:0' }, postprocessor: { kind: 'raw' } },
    };
    await expect(p.swapModel(bad)).rejects.toMatchObject({ code: 'E_PIPELINE_SWAP_FAILED' });
    const wrongLayout = {
      ...yoloBundle('3', 1),
      spec: { input: { ...IMAGE_INPUT, layout: 'NHWC' }, postprocessor: { kind: 'raw' } },
    };
    await expect(p.swapModel(wrongLayout)).rejects.toMatchObject({ code: 'E_PIPELINE_SWAP_FAILED' });
    source.push(frame(jpeg));
    await waitFor(() => p.stats().processed === 1);
    const s = p.stats();
    expect(s.model?.version).toBe('1');
    expect(s.errors.E_PIPELINE_SWAP_FAILED?.count).toBe(2);
    expect(s.errors.E_PIPELINE_SPEC_MISMATCH?.count).toBe(2);
  });

  it('does not start on a bad spec, and says why in its stats', async () => {
    const source = new ManualSource<Frame>('frame');
    const p = start({
      source,
      bundle: {
        ...yoloBundle('1', 0),
        spec: { input: { ...IMAGE_INPUT, width: 48 }, postprocessor: { kind: 'raw' } },
      },
    });
    await expect(p.start()).rejects.toMatchObject({ code: 'E_PIPELINE_SPEC_MISMATCH' });
    expect(p.stats()).toMatchObject({ state: 'failed', lastError: { code: 'E_PIPELINE_SPEC_MISMATCH' } });
    expect(source.started).toBe(0);
  });

  it('refuses a source of the wrong kind at start, and stray items of the wrong kind later', async () => {
    const audio = new ManualSource<SourceItem>('audio');
    await expect(start({ source: audio }).start()).rejects.toMatchObject({ code: 'E_PIPELINE_INPUT_KIND' });
    const source = new ManualSource<SourceItem>('frame');
    const p = start({ source });
    await p.start();
    source.push({ kind: 'audio', samples: new Float32Array(16), sampleRate: 16000 });
    await waitFor(() => p.stats().errors.E_PIPELINE_INPUT_KIND);
    expect(p.stats().state).toBe('running');
  });

  it('counts a failing sink as E_PIPELINE_SINK while the other sinks still get the event', async () => {
    const source = new ManualSource<Frame>('frame');
    const good = new Collect();
    const p = start({
      source,
      sinks: [
        {
          emit: () => {
            throw new Error('outbox full');
          },
        },
        { emit: () => Promise.reject(new Error('nope')) },
        good,
      ],
    });
    await p.start();
    source.push(frame(jpeg));
    await waitFor(() => p.stats().errors.E_PIPELINE_SINK?.count === 2);
    expect(good.events.map((e) => e.phase)).toEqual(['start']);
  });

  it('ends an event after the hold-off even when no more items arrive (injected clock)', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const source = new ManualSource<SensorWindow>('sensor');
    const sink = new Collect();
    const bundle: ModelBundle = {
      name: 'sensor-cls',
      version: '1',
      model: identityModel([1, 3]),
      spec: {
        input: { kind: 'tensor', name: 'x', shape: [1, 3] },
        postprocessor: { kind: 'classification', params: { topK: 1 } },
        labels: ['idle', 'walk', 'run'],
      },
    };
    const p = start({ source, bundle, sinks: [sink], clock, rules: { labels: ['run'], holdOffMs: 3000 } });
    await p.start();
    const push = async (v: number[], n: number) => {
      const before = p.stats().processed;
      source.push({ kind: 'sensor', values: Float32Array.from(v) });
      await waitFor(() => p.stats().processed === before + 1);
      await clock.advance(n);
    };
    await push([0, 0, 5], 500);
    await push([0, 0, 6], 500);
    await push([5, 0, 0], 500); // idle: not a label of interest
    expect(sink.events.map((e) => e.phase)).toEqual(['start']);
    await clock.advance(2000);
    expect(sink.events.map((e) => e.phase)).toEqual(['start']);
    await clock.advance(1500);
    expect(sink.events.map((e) => e.phase)).toEqual(['start', 'end']);
    expect(sink.events[1]).toMatchObject({ label: 'run', data: { seen: 2 } });
  });
});

describe('pipeline runner resilience', () => {
  it('reloads the model when its inference worker dies, and goes on', async () => {
    const jpegFrame = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#a0a0a0' } })
      .jpeg()
      .toBuffer();
    const source = new ManualSource<Frame>('frame');
    const p = createPipeline(
      { id: 'cam-2', source: source as Source, bundle: yoloBundle('1', 0), sinks: [] },
      { logger },
    );
    await p.start();
    try {
      source.push({ kind: 'frame', data: jpegFrame });
      await waitFor(() => p.stats().processed === 1);
      // Kill the worker behind the running session, as a native crash would.
      const internals = p as unknown as { model: { session: { worker: { terminate(): Promise<number> } } } };
      await internals.model.session.worker.terminate();
      source.push({ kind: 'frame', data: jpegFrame });
      await waitFor(() => p.stats().errors.E_PIPELINE_INFERENCE);
      await waitFor(async () => {
        source.push({ kind: 'frame', data: jpegFrame });
        await new Promise((r) => setTimeout(r, 20));
        return p.stats().processed >= 2;
      });
      expect(p.stats().state).toBe('running');
    } finally {
      await p.stop();
    }
  });

  it('decodes several frames at once but hands them on in arrival order', async () => {
    const big = await sharp({ create: { width: 2000, height: 1500, channels: 3, background: '#a0a0a0' } })
      .jpeg()
      .toBuffer();
    const small = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#a0a0a0' } })
      .jpeg()
      .toBuffer();
    const source = new ManualSource<Frame>('frame');
    const seen: number[] = [];
    const p = createPipeline(
      {
        id: 'cam-4',
        source: source as Source,
        bundle: yoloBundle('1', 0),
        sinks: [],
        queueSize: 2,
        prepareConcurrency: 3,
        resultSinks: [{ onResult: (_id, _r, item) => void seen.push(item.seq) }],
      },
      { logger },
    );
    await p.start();
    try {
      // Big then small frames, three at a time: the small ones finish decoding first.
      for (let round = 0; round < 5; round++) {
        const before = p.stats().processed + p.stats().dropped;
        source.push({ kind: 'frame', data: big });
        source.push({ kind: 'frame', data: small });
        source.push({ kind: 'frame', data: small });
        await waitFor(() => p.stats().processed + p.stats().dropped === before + 3, { intervalMs: 5 });
      }
      expect(seen.length).toBeGreaterThanOrEqual(5);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    } finally {
      await p.stop();
    }
  });

  it('runs the same with onnxruntime on the main thread (inProcess)', async () => {
    const jpegFrame = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#a0a0a0' } })
      .jpeg()
      .toBuffer();
    const source = new ManualSource<Frame>('frame');
    const sink = new Collect();
    const p = createPipeline(
      {
        id: 'cam-3',
        source: source as Source,
        bundle: yoloBundle('1', 0),
        sinks: [sink],
        inference: { inProcess: true },
      },
      { logger },
    );
    await p.start();
    source.push({ kind: 'frame', data: jpegFrame });
    await waitFor(() => p.stats().processed === 1);
    await p.stop();
    expect(sink.events.map((e) => `${e.phase}:${e.label}`)).toEqual(['start:person', 'end:person']);
  });
});
