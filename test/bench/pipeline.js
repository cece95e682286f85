#!/usr/bin/env node
// `npm run bench -- pipeline`: the inference pipeline on 1080p JPEG frames made from real photographs
// (the face-api sample photographs), measured in one run per model:
//   decode_fps   JPEG bytes -> model tensor (sharp decode, resize, layout), one frame at a time
//   infer_fps    onnxruntime on tensors prepared beforehand, one at a time
//   pipeline_fps the whole runner (queue -> preprocess overlapped with inference -> postprocess -> rules ->
//                an emitted event per frame), fed so that it never starves
//   ratio        pipeline_fps / min(decode_fps, infer_fps): how much of the slower stage the overlap keeps
//   (also: the same pipeline with one decode lane, with onnxruntime on the main thread, and one frame at a
//   time for latency without queueing)
//   p50_ms/p95_ms latency per frame in the pipeline run, from hand-off by the source to the emitted event
//                (result sinks are called after the event sinks)
// Models: BlazeFace front 128 (light; decode-bound) and PP-OCR v4 detection at 640x640 (compute-bound).
// Uses agent/dist (npm run bench builds first). Prints one JSON object on its last line.
// Options: --frames N (BlazeFace frames per stage, default 300), --ocr-frames N (default 30), --rounds N
//          (interleaved rounds per stage, default 5; the median round counts),
//          --threads N (onnxruntime intra-op threads, default cores - 1), --sharp N (libvips threads, default 1).
// Defaults split the cores: decode on one, inference on the rest, which is what lets the two stages overlap.
'use strict';

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { performance, monitorEventLoopDelay } = require('node:perf_hooks');
const { setImmediate } = require('node:timers');

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
/** The runner's default number of decode lanes (2 with two cores or more). */
const defaultLanes = Math.min(2, os.availableParallelism());

/**
 * A running pipeline fed by a source that hands over the next frame each time a result comes out.
 * `round(n, inFlight)` measures n frames: with inFlight 3 (plus one per extra decode lane) preprocess, the
 * hand-off slot and the queue stay busy (throughput); with 1 the next frame goes in only when the last
 * is done (latency without queueing).
 */
async function openPipeline({ bundle, frame, threads, updateEveryFrame, inProcess = false, lanes }) {
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
  let onResult = () => undefined;
  const p = pipeline.createPipeline(
    {
      id: 'bench',
      source,
      bundle,
      queueSize: 2,
      ...(lanes ? { prepareConcurrency: lanes } : {}),
      inference: { intraOpThreads: threads, inProcess },
      rules: updateEveryFrame ? { updateIntervalMs: 0, holdOffMs: 600_000 } : {},
      sinks: [{ emit: () => void events++ }],
      resultSinks: [{ onResult: (_id, _result, item) => onResult(item) }],
    },
    { logger: createLogger({ namespace: 'bench', silent: true }) },
  );
  await p.start();
  return {
    /** fps over n frames after 3 that fill the pipeline, and per-frame latency from hand-off to result. */
    async round(n, inFlight) {
      const warm = 3;
      let results = 0;
      let tStart = 0;
      const lag = monitorEventLoopDelay({ resolution: 5 });
      const lat = [];
      const t = await new Promise((resolve) => {
        let over = false;
        onResult = (item) => {
          if (over) return;
          results++;
          if (results > warm) lat.push(performance.timeOrigin + performance.now() - item.ts);
          if (results === warm) {
            tStart = performance.now();
            lag.enable();
          }
          if (results === warm + n) {
            over = true;
            resolve(performance.now());
          } else push();
        };
        for (let i = 0; i < inFlight + (lanes ?? defaultLanes) - 1; i++) push();
      });
      lag.disable();
      // Let frames still in flight finish, so the next round starts from an idle pipeline.
      await new Promise((r) => {
        const check = () => (p.stats().processed + p.stats().dropped >= seq ? r() : setImmediate(check));
        check();
      });
      onResult = () => undefined;
      lat.sort((a, b) => a - b);
      const q = (x) => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(x * lat.length) - 1))];
      return { fps: n / ((t - tStart) / 1000), lagMaxMs: lag.max / 1e6, p50: r2(q(0.5)), p95: r2(q(0.95)) };
    },
    stats: () => p.stats(),
    events: () => events,
    close: () => p.stop(),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Each stage is measured in `rounds` short rounds, interleaved (decode, inference, pipeline, decode, ...), and
 * the median round is taken: on a shared machine whose load drifts, all stages then see the same conditions.
 */
async function measure({ name, bundle, jpegs, n, rounds, threads, updateEveryFrame }) {
  const spec = pipeline.parseSpec(bundle.spec).spec;
  // ts with sub-millisecond precision, so that latency can be taken from the result sink.
  const frame = (i) => ({
    kind: 'frame',
    data: jpegs[i % jpegs.length],
    ts: performance.timeOrigin + performance.now(),
    seq: i,
  });
  const per = Math.max(5, Math.round(n / rounds));

  const prepared = [];
  for (let i = 0; i < jpegs.length; i++)
    prepared.push((await pipeline.preprocessImage(frame(i), spec.input)).tensor);
  const model = await pipeline.LoadedModel.load(bundle, { intraOpThreads: threads, warmupRuns: 2 });
  const provider = model.provider;
  const args = { bundle, frame, threads, updateEveryFrame };
  const busy = await openPipeline(args);
  const inProcess = await openPipeline({ ...args, inProcess: true });
  const lanes1 = await openPipeline({ ...args, lanes: 1 });

  const r = {
    decode: [],
    infer: [],
    pipeline: [],
    p50: [],
    p95: [],
    lag: [],
    inProcess: [],
    inProcessLag: [],
    lanes1: [],
  };
  for (let k = 0; k < rounds; k++) {
    let t0 = performance.now();
    for (let i = 0; i < per; i++) await pipeline.preprocessImage(frame(i), spec.input);
    r.decode.push(per / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (let i = 0; i < per; i++) await model.infer(prepared[i % prepared.length]);
    r.infer.push(per / ((performance.now() - t0) / 1000));
    const b = await busy.round(per, 3);
    r.pipeline.push(b.fps);
    r.p50.push(b.p50);
    r.p95.push(b.p95);
    r.lag.push(b.lagMaxMs);
    const ip = await inProcess.round(per, 3);
    r.inProcess.push(ip.fps);
    r.inProcessLag.push(ip.lagMaxMs);
    r.lanes1.push((await lanes1.round(per, 3)).fps);
  }
  const single = await busy.round(Math.max(5, Math.round(per / 2)), 1);
  await model.release();
  const stats = busy.stats();
  const events = busy.events();
  await Promise.all([busy.close(), inProcess.close(), lanes1.close()]);

  const decodeFps = median(r.decode);
  const inferFps = median(r.infer);
  const pipelineFps = median(r.pipeline);
  const slowest = Math.min(decodeFps, inferFps);
  return {
    model: name,
    provider,
    intra_op_threads: threads,
    frames_per_round: per,
    rounds,
    decode_fps: r2(decodeFps),
    infer_fps: r2(inferFps),
    pipeline_fps: r2(pipelineFps),
    ratio: r2(pipelineFps / slowest),
    p50_ms: r2(median(r.p50)),
    p95_ms: r2(median(r.p95)),
    ratio_per_round: r.pipeline.map((f, i) => r2(f / Math.min(r.decode[i], r.infer[i]))),
    unqueued_p50_ms: single.p50,
    unqueued_p95_ms: single.p95,
    event_loop_lag_max_ms: r2(Math.max(...r.lag)),
    in_process: {
      pipeline_fps: r2(median(r.inProcess)),
      event_loop_lag_max_ms: r2(Math.max(...r.inProcessLag)),
    },
    decode_lanes: defaultLanes,
    one_decode_lane: { pipeline_fps: r2(median(r.lanes1)), ratio: r2(median(r.lanes1) / slowest) },
    stage_p50_ms: {
      queue: stats.latency.queue.p50,
      preprocess: stats.latency.preprocess.p50,
      infer: stats.latency.infer.p50,
      postprocess: stats.latency.postprocess.p50,
      rules: stats.latency.rules.p50,
    },
    events,
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
    rounds: arg('rounds', 5),
    threads,
    updateEveryFrame: true,
  });
  process.stderr.write(`${JSON.stringify(face)}\n`);
  const ocr = await measure({
    name: 'ppocr-det-640',
    bundle: ppocr,
    jpegs,
    n: arg('ocr-frames', 30),
    rounds: arg('rounds', 5),
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
