#!/usr/bin/env node
// `npm run bench -- pipeline`: the inference pipeline on 1080p JPEG frames made from real photographs
// (the face-api sample photographs), measured in one run per model:
//   decode_fps   JPEG bytes -> model tensor (sharp decode, resize, layout), one frame at a time
//   infer_fps    onnxruntime on tensors prepared beforehand, one at a time
//   pipeline_fps the whole runner (queue -> preprocess overlapped with inference -> postprocess -> rules ->
//                an emitted event per frame), fed so that it never starves
//   ratio        pipeline_fps / min(decode_fps, infer_fps): how much of the slower stage the overlap keeps
//   p50_ms/p95_ms latency per frame in the pipeline run, from hand-off by the source to the emitted event
// Models: BlazeFace front 128 (light; decode-bound) and PP-OCR v4 detection at 640x640 (compute-bound).
// Uses agent/dist (npm run bench builds first). Prints one JSON object on its last line.
// Options: --frames N (BlazeFace frames per stage, default 300), --ocr-frames N (default 30),
//          --threads N (onnxruntime intra-op threads, default cores - 1), --sharp N (libvips threads, default 1).
// Defaults split the cores: decode on one, inference on the rest, which is what lets the two stages overlap.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { performance, monitorEventLoopDelay } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..', '..');
const sharp = require(require.resolve('sharp', { paths: [path.join(ROOT, 'agent')] }));
const pipeline = require(path.join(ROOT, 'agent', 'dist', 'pipeline'));
const { ensureFixtures } = require(path.join(ROOT, 'scripts', 'fixtures'));
const { createLogger } = require(path.join(ROOT, 'shared', 'dist'));

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : dflt;
}

function photos() {
  const pkg = require.resolve('@vladmandic/face-api/package.json', { paths: [path.join(ROOT, 'agent')] });
  const dir = path.join(path.dirname(pkg), 'demo');
  return fs
    .readdirSync(dir)
    .filter((f) => /^sample\d\.jpg$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** 1920x1080 JPEGs (quality 85, as a camera's MJPEG would be) cut from the photographs. */
async function frames1080p() {
  return Promise.all(
    photos().map((f) => sharp(f).resize(1920, 1080, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer()),
  );
}

const r2 = (v) => Math.round(v * 100) / 100;

/** Runs a pipeline on `n` frames after `warm` ones. `inFlight` frames are handed over at once, and one more
 * each time a result comes out: 4 keeps preprocess, the hand-off slot and the queue of 2 busy (throughput);
 * 1 sends the next frame only when the previous one is done (latency without queueing). */
async function runPipeline({ bundle, frame, n, threads, updateEveryFrame, inFlight, inProcess }) {
  let seq = 0;
  let push = () => undefined;
  const source = {
    id: 'bench',
    itemKind: 'frame',
    start(onItem) {
      push = () => onItem(frame(seq++));
      return Promise.resolve();
    },
    stop() {
      push = () => undefined;
      return Promise.resolve();
    },
    health: () => ({ state: 'running', since: 0, restarts: 0 }),
    stats: () => ({ produced: seq, dropped: 0, errors: {} }),
  };
  let events = 0;
  let results = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const warm = 5;
  let tStart = 0;
  const lag = monitorEventLoopDelay({ resolution: 5 });
  const p = pipeline.createPipeline(
    {
      id: 'bench',
      source,
      bundle,
      queueSize: 2,
      inference: { intraOpThreads: threads, inProcess: Boolean(inProcess) },
      rules: updateEveryFrame ? { updateIntervalMs: 0, holdOffMs: 60_000 } : {},
      sinks: [{ emit: () => void events++ }],
      resultSinks: [
        {
          onResult: () => {
            results++;
            if (results === warm) {
              tStart = performance.now();
              lag.enable();
            }
            if (results === warm + n) done(performance.now());
            else push();
          },
        },
      ],
    },
    { logger: createLogger({ namespace: 'bench', silent: true }) },
  );
  await p.start();
  for (let i = 0; i < inFlight; i++) push();
  const tEnd = await finished;
  lag.disable();
  const stats = p.stats();
  await p.stop();
  return { fps: n / ((tEnd - tStart) / 1000), stats, events, lagMaxMs: lag.max / 1e6 };
}

async function measure({ name, bundle, jpegs, n, threads, updateEveryFrame }) {
  const spec = pipeline.parseSpec(bundle.spec).spec;
  const frame = (i) => ({ kind: 'frame', data: jpegs[i % jpegs.length], ts: Date.now(), seq: i });

  // 1. decode + preprocess alone.
  const prepared = [];
  for (let i = 0; i < 3; i++) await pipeline.preprocessImage(frame(i), spec.input); // warm sharp
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const p = await pipeline.preprocessImage(frame(i), spec.input);
    if (i < jpegs.length) prepared.push(p.tensor);
  }
  const decodeFps = n / ((performance.now() - t0) / 1000);

  // 2. inference alone on prepared tensors.
  const model = await pipeline.LoadedModel.load(bundle, { intraOpThreads: threads, warmupRuns: 2 });
  t0 = performance.now();
  for (let i = 0; i < n; i++) await model.infer(prepared[i % prepared.length]);
  const inferFps = n / ((performance.now() - t0) / 1000);
  const provider = model.provider;
  await model.release();

  // 3. the whole pipeline, kept busy; then 4. one frame at a time for latency without queueing; then 5. the
  //    same busy run with onnxruntime on the main thread, to show what the worker thread buys.
  const frameArgs = { bundle, frame, threads, updateEveryFrame };
  const busy = await runPipeline({ ...frameArgs, n, inFlight: 4 });
  const single = await runPipeline({ ...frameArgs, n: Math.max(10, Math.floor(n / 3)), inFlight: 1 });
  const inProcess = await runPipeline({ ...frameArgs, n, inFlight: 4, inProcess: true });
  const stats = busy.stats;
  const pipelineFps = busy.fps;
  return {
    model: name,
    provider,
    intra_op_threads: threads,
    frames: n,
    decode_fps: r2(decodeFps),
    infer_fps: r2(inferFps),
    pipeline_fps: r2(pipelineFps),
    ratio: r2(pipelineFps / Math.min(decodeFps, inferFps)),
    p50_ms: stats.latency.total.p50,
    p95_ms: stats.latency.total.p95,
    unqueued_p50_ms: single.stats.latency.total.p50,
    unqueued_p95_ms: single.stats.latency.total.p95,
    event_loop_lag_max_ms: r2(busy.lagMaxMs),
    in_process: { pipeline_fps: r2(inProcess.fps), event_loop_lag_max_ms: r2(inProcess.lagMaxMs) },
    stage_p50_ms: {
      queue: stats.latency.queue.p50,
      preprocess: stats.latency.preprocess.p50,
      infer: stats.latency.infer.p50,
      postprocess: stats.latency.postprocess.p50,
      rules: stats.latency.rules.p50,
    },
    events: busy.events,
    detections: stats.detections,
    dropped: stats.dropped,
    errors: Object.keys(stats.errors),
  };
}

async function main() {
  const fx = ensureFixtures();
  const jpegs = await frames1080p();
  const threads = arg('threads', Math.max(1, os.cpus().length - 1));
  sharp.concurrency(arg('sharp', 1));
  const blazeface = {
    name: 'blazeface',
    version: '1.2.0',
    model: fx['blazeface.onnx'],
    spec: {
      input: {
        kind: 'image',
        name: 'input:0',
        layout: 'NHWC',
        width: 128,
        height: 128,
        resize: 'letterbox',
        padColour: [0, 0, 0],
        normalisation: { kind: 'scaleOffset', scale: 1 / 127.5, offset: -1 },
      },
      postprocessor: { kind: 'blazeface' },
    },
  };
  const ppocr = {
    name: 'ppocr-det',
    version: '4',
    model: fx['ppocr_det.onnx'],
    spec: {
      input: {
        kind: 'image',
        name: 'x',
        layout: 'NCHW',
        width: 640,
        height: 640,
        colour: 'BGR',
        resize: 'letterbox',
        normalisation: { kind: 'meanStd', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      },
      postprocessor: { kind: 'raw' },
    },
  };
  const face = await measure({
    name: 'blazeface-front-128',
    bundle: blazeface,
    jpegs,
    n: arg('frames', 300),
    threads,
    updateEveryFrame: true,
  });
  process.stderr.write(`${JSON.stringify(face)}\n`);
  const ocr = await measure({
    name: 'ppocr-det-640',
    bundle: ppocr,
    jpegs,
    n: arg('ocr-frames', 30),
    threads,
    updateEveryFrame: false,
  });
  process.stderr.write(`${JSON.stringify(ocr)}\n`);
  const pick = (r) => ({
    decode_fps: r.decode_fps,
    infer_fps: r.infer_fps,
    pipeline_fps: r.pipeline_fps,
    ratio: r.ratio,
    p50_ms: r.p50_ms,
    p95_ms: r.p95_ms,
  });
  console.log(
    JSON.stringify({
      ...pick(face),
      blazeface: face,
      ppocr_det: ocr,
      ppocr_det_summary: pick(ocr),
      frame: '1920x1080 JPEG q85 from the face-api sample photographs',
      sharp_concurrency: sharp.concurrency(),
      load_average: os.loadavg().map(r2),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
