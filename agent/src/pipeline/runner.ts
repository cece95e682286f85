import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  childLogger,
  createLogger,
  isPerchError,
  isValidId,
  PerchError,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@perch/shared';
import { LoadedModel } from './inference/model';
import { ErrorBook } from './output/error-book';
import { LatencyWindow, RateMeter } from './output/latency';
import { SnapshotStore } from './output/snapshots';
import { Preparer, type Prepared } from './prepare';
import { DropOldestQueue, OrderGate, Slot } from './queue';
import { applyRules, type Match } from './rules/filter';
import { EventTracker, toEventMessage, type Transition } from './rules/events';
import type {
  Detection,
  EventMessage,
  InferenceResult,
  ModelBundle,
  PipelineHandle,
  PipelineOptions,
  PipelineState,
  PipelineStats,
  Frame,
  SnapshotRef,
  SnapshotWriter,
  SourceItem,
  TensorStatistics,
} from './types';

interface Queued {
  readonly item: SourceItem;
  readonly receivedAt: number;
}

interface Timed extends Prepared {
  readonly receivedAt: number;
  readonly preparedAt: number;
}

const KIND_FOR_INPUT = { image: 'frame', audio: 'audio', tensor: 'sensor' } as const;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export interface PipelineDeps {
  readonly logger?: Logger;
}

/**
 * source -> bounded queue (drop oldest) -> preprocess -> hand-off slot -> inference -> postprocess -> rules ->
 * sinks. Two loops, so the next item is decoded and resized while the current one is in onnxruntime. Errors
 * on one item are coded, counted and logged; the loops go on.
 */
export class PipelineRunner implements PipelineHandle {
  readonly id: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly queue: DropOldestQueue<Queued>;
  private readonly slot = new Slot<Timed>();
  private readonly gate = new OrderGate();
  private ticket = 0;
  private readonly preparer = new Preparer();
  private readonly errors = new ErrorBook();
  private readonly tracker: EventTracker;
  private readonly snapshots: SnapshotWriter | undefined;
  private latest:
    { frame: Frame; size: { width: number; height: number }; detections: readonly Detection[] } | undefined;
  private readonly lat = {
    queue: new LatencyWindow(),
    preprocess: new LatencyWindow(),
    infer: new LatencyWindow(),
    postprocess: new LatencyWindow(),
    rules: new LatencyWindow(),
    total: new LatencyWindow(),
  };
  private readonly rate = new RateMeter();
  private model: LoadedModel | undefined;
  private state: PipelineState = 'stopped';
  private abort = new AbortController();
  private loops: Promise<void>[] = [];
  private ticker: TimerHandle | undefined;
  private swapping: Promise<void> = Promise.resolve();
  private healing = false;
  private counters = { received: 0, processed: 0, dropped: 0, detections: 0, events: 0, snapshots: 0 };
  private tensors: readonly TensorStatistics[] | undefined;

  constructor(
    private readonly opts: PipelineOptions,
    deps: PipelineDeps = {},
  ) {
    this.id = opts.id;
    this.clock = opts.clock ?? systemClock;
    const root = deps.logger ?? createLogger({ namespace: 'agent' });
    this.log = childLogger(root, 'pipeline', { pipeline: opts.id });
    const size = Math.min(2, Math.max(1, Math.floor(opts.queueSize ?? 1)));
    this.queue = new DropOldestQueue<Queued>(size);
    this.tracker = new EventTracker({
      newId: randomUUID,
      ...(opts.rules?.holdOffMs !== undefined ? { holdOffMs: opts.rules.holdOffMs } : {}),
      ...(opts.rules?.updateIntervalMs !== undefined
        ? { updateIntervalMs: opts.rules.updateIntervalMs }
        : {}),
    });
    this.snapshots = opts.snapshotWriter ?? (opts.snapshots ? new SnapshotStore(opts.snapshots) : undefined);
  }

  /** Loads and warms the model, then starts the source and the loops. Rejects (with the error also in
   * stats) when the model or spec is bad or the source refuses to start; the pipeline is then 'failed'. */
  async start(): Promise<void> {
    if (this.state === 'running' || this.state === 'starting') return;
    this.state = 'starting';
    this.abort = new AbortController();
    try {
      this.model = await LoadedModel.load(this.opts.bundle, this.opts.inference);
      this.noteFallbacks(this.model);
      const wants = KIND_FOR_INPUT[this.model.spec.input.kind];
      if (this.opts.source.itemKind !== wants) {
        throw new PerchError(
          'E_PIPELINE_INPUT_KIND',
          `model ${this.model.name} takes ${wants} items, source ${this.opts.source.id} yields ${this.opts.source.itemKind}`,
        );
      }
    } catch (err) {
      await this.model?.release();
      this.model = undefined;
      this.fail(err);
      throw err;
    }
    const signal = this.abort.signal;
    // Several decode lanes only for images: audio windows and sensor readings are cheap and must stay in order
    // through the re-windowing anyway.
    const lanes =
      this.model.spec.input.kind === 'image'
        ? Math.min(4, Math.max(1, Math.floor(this.opts.prepareConcurrency ?? defaultLanes())))
        : 1;
    this.ticket = 0;
    this.gate.reset();
    this.loops = [...Array.from({ length: lanes }, () => this.prepLoop(signal)), this.inferLoop(signal)];
    const holdOff = this.opts.rules?.holdOffMs ?? 2000;
    this.ticker = this.clock.setInterval(() => this.onTick(), Math.max(50, Math.min(250, holdOff / 4)));
    try {
      await this.opts.source.start((item) => this.onItem(item));
    } catch (err) {
      const coded = isPerchError(err)
        ? err
        : new PerchError('E_PIPELINE_SOURCE', `source ${this.opts.source.id} did not start`, undefined, {
            cause: err,
          });
      await this.halt();
      this.fail(coded);
      throw coded;
    }
    this.state = 'running';
    this.log.info('pipeline started', {
      model: this.model.name,
      version: this.model.version,
      provider: this.model.provider,
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    await this.opts.source.stop().catch((err: unknown) => this.record(err));
    await this.halt();
    this.emitTransitions(this.tracker.endAll(this.clock.now()));
    this.state = 'stopped';
    this.log.info('pipeline stopped');
  }

  /** Stop the loops and the timer and release the model (the source is the caller's business). */
  private async halt(): Promise<void> {
    this.abort.abort();
    this.clock.clearInterval(this.ticker);
    this.ticker = undefined;
    await Promise.allSettled(this.loops);
    this.loops = [];
    this.queue.drain();
    await this.model?.release();
    this.model = undefined;
  }

  /**
   * Load and warm the new bundle while the old model keeps serving, then switch: the item in flight finishes
   * on the old model, the next one (re-prepared if it was made for the old model) runs on the new one.
   */
  swapModel(bundle: ModelBundle): Promise<void> {
    const run = this.swapping.then(async () => {
      let next: LoadedModel;
      try {
        next = await LoadedModel.load(bundle, this.opts.inference);
      } catch (err) {
        const cause = isPerchError(err) ? err : undefined;
        const wrapped = new PerchError(
          'E_PIPELINE_SWAP_FAILED',
          `model ${bundle.name}@${bundle.version} not switched to: ${err instanceof Error ? err.message : String(err)}`,
          { cause: cause?.toJSON() },
          { cause: err },
        );
        this.record(wrapped);
        if (cause) this.record(cause);
        throw wrapped;
      }
      if (this.state !== 'running' && this.state !== 'starting') {
        await next.release();
        throw new PerchError('E_PIPELINE_NOT_RUNNING', `pipeline ${this.id} is ${this.state}`);
      }
      const old = this.model;
      this.model = next;
      this.noteFallbacks(next);
      this.log.info('model switched', { from: old?.version, to: next.version, provider: next.provider });
      await old?.release();
    });
    this.swapping = run.catch(() => undefined);
    return run;
  }

  async snapshot(): Promise<SnapshotRef | undefined> {
    const l = this.latest;
    if (!l || !this.snapshots) return undefined;
    try {
      const ref = await this.snapshots.save(this.id, l.frame, l.size, l.detections, this.clock.now());
      this.counters.snapshots++;
      return ref;
    } catch (err) {
      this.record(err);
      return undefined;
    }
  }

  stats(): PipelineStats {
    const now = this.clock.now();
    const m = this.model;
    const src = this.opts.source;
    return {
      id: this.id,
      state: this.state,
      ...(m ? { model: { version: m.version, provider: m.provider, loadedAt: m.loadedAt } } : {}),
      received: this.counters.received,
      processed: this.counters.processed,
      dropped: this.counters.dropped,
      fps: this.rate.rate(now),
      latency: {
        queue: this.lat.queue.summary(),
        preprocess: this.lat.preprocess.summary(),
        infer: this.lat.infer.summary(),
        postprocess: this.lat.postprocess.summary(),
        rules: this.lat.rules.summary(),
        total: this.lat.total.summary(),
      },
      detections: this.counters.detections,
      events: this.counters.events,
      snapshots: this.counters.snapshots,
      errors: this.errors.snapshot(),
      ...(this.errors.last ? { lastError: this.errors.last } : {}),
      source: { ...safe(() => src.health()), stats: safe(() => src.stats()) },
      ...(this.tensors ? { tensors: this.tensors } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------------------

  private onItem(item: SourceItem): void {
    if (this.state !== 'running' && this.state !== 'starting') return;
    this.counters.received++;
    if (this.queue.push({ item, receivedAt: performance.now() })) this.counters.dropped++;
  }

  /** Takes items in arrival order and hands them on in the same order, however many lanes decode at once. */
  private async prepLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let q: Queued;
      try {
        q = await this.queue.take(signal);
      } catch {
        return;
      }
      const ticket = this.ticket++;
      try {
        const model = this.model;
        if (!model) continue;
        const t0 = performance.now();
        let p: Prepared | undefined;
        try {
          p = await this.preparer.prepare(q.item, model);
        } catch (err) {
          if (signal.aborted) return;
          this.record(err);
        }
        const t1 = performance.now();
        await this.gate.wait(ticket);
        if (!p || signal.aborted) continue;
        this.lat.queue.add(t0 - q.receivedAt);
        this.lat.preprocess.add(t1 - t0);
        try {
          await this.slot.put({ ...p, receivedAt: q.receivedAt, preparedAt: t1 }, signal);
        } catch {
          return;
        }
      } finally {
        this.gate.done(ticket);
      }
    }
  }

  private async inferLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let p: Timed;
      try {
        p = await this.slot.take(signal);
      } catch {
        return;
      }
      try {
        await this.process(p);
      } catch (err) {
        this.record(err);
        this.healIfDead();
      }
    }
  }

  private async process(prepared: Timed): Promise<void> {
    let p: Prepared = prepared;
    const model = this.model;
    if (!model) return;
    if (p.model !== model) p = await this.preparer.prepare(p.item, model);

    const results: InferenceResult[] = [];
    let inferMs = 0;
    let postMs = 0;
    for (const input of p.inputs) {
      const t0 = performance.now();
      const outputs = await model.infer(input);
      const t1 = performance.now();
      results.push(
        model.postprocessor.process(outputs, {
          labels: model.labels,
          ...(p.geometry ? { geometry: p.geometry } : {}),
        }),
      );
      inferMs += t1 - t0;
      postMs += performance.now() - t1;
    }
    if (p.inputs.length > 0) {
      this.lat.infer.add(inferMs);
      this.lat.postprocess.add(postMs);
    }
    const result = mergeResults(results);
    if (result.tensors) this.tensors = result.tensors;
    this.counters.detections += result.detections.length;

    const t2 = performance.now();
    const now = this.clock.now();
    const matches = applyRules(result, this.opts.rules ?? {});
    if (p.item.kind === 'frame' && result.frame) {
      this.latest = { frame: p.item, size: result.frame, detections: matches.map((m) => m.detection) };
    }
    const transitions = this.tracker.observe(matches, now, result.frame);
    if (transitions.some((t) => t.phase === 'start'))
      await this.attachSnapshot(transitions, p, matches, result, now);
    this.emitTransitions(transitions);
    for (const sink of this.opts.resultSinks ?? []) {
      try {
        sink.onResult(this.id, result, { ts: p.item.ts, seq: p.item.seq });
      } catch (err) {
        this.record(new PerchError('E_PIPELINE_SINK', `result sink failed: ${String(err)}`));
      }
    }
    const t3 = performance.now();
    this.lat.rules.add(t3 - t2);
    this.lat.total.add(t3 - prepared.receivedAt);
    this.counters.processed++;
    this.rate.mark(now);
  }

  private async attachSnapshot(
    transitions: readonly Transition[],
    p: Prepared,
    matches: readonly Match[],
    result: InferenceResult,
    now: number,
  ): Promise<void> {
    if (!this.snapshots || p.item.kind !== 'frame' || !result.frame) return;
    try {
      const dets: Detection[] = matches.map((m) => m.detection);
      const ref = await this.snapshots.save(this.id, p.item, result.frame, dets, now);
      this.counters.snapshots++;
      for (const t of transitions) if (t.phase === 'start') t.occurrence.snapshot = ref.ref;
    } catch (err) {
      this.record(err);
    }
  }

  /** A session whose worker died (native crash, out of memory) is reloaded from the same bundle, once at a time. */
  private healIfDead(): void {
    const m = this.model;
    if (!m || m.alive || this.healing) return;
    this.healing = true;
    this.log.warn('inference worker died; reloading the model', { model: m.name, version: m.version });
    this.swapModel(m.bundle)
      .catch(() => undefined)
      .finally(() => {
        this.healing = false;
      });
  }

  private onTick(): void {
    if (this.state !== 'running') return;
    this.emitTransitions(this.tracker.tick(this.clock.now()));
  }

  private emitTransitions(transitions: readonly Transition[]): void {
    if (transitions.length === 0) return;
    const m = this.model ?? undefined;
    const model =
      m && isValidId(m.name) && VERSION_RE.test(m.version) && m.version.length <= 64
        ? { name: m.name, version: m.version }
        : undefined;
    for (const t of transitions) {
      const msg = toEventMessage(t, { pipelineId: this.id, newId: randomUUID, ...(model ? { model } : {}) });
      this.counters.events++;
      this.emit(msg);
    }
  }

  private emit(msg: EventMessage): void {
    for (const sink of this.opts.sinks) {
      try {
        const r = sink.emit(msg);
        if (r && typeof (r as Promise<void>).catch === 'function') {
          (r as Promise<void>).catch((err: unknown) =>
            this.record(new PerchError('E_PIPELINE_SINK', `event sink rejected: ${String(err)}`)),
          );
        }
      } catch (err) {
        this.record(new PerchError('E_PIPELINE_SINK', `event sink threw: ${String(err)}`));
      }
    }
  }

  private noteFallbacks(model: LoadedModel): void {
    for (const f of model.fallbacks) {
      this.record(
        new PerchError(
          'E_PIPELINE_PROVIDER_FALLBACK',
          `execution provider ${f.provider} unavailable: ${f.reason}`,
        ),
      );
    }
  }

  private record(err: unknown): void {
    const info = this.errors.record(err, this.clock.now());
    // The first of each code, then every hundredth, so a stream of corrupt frames does not flood the journal.
    if (info.count === 1 || info.count % 100 === 0) {
      this.log.warn(info.message, { code: info.code, count: info.count });
    }
  }

  private fail(err: unknown): void {
    this.state = 'failed';
    this.record(err);
  }
}

/** Two decode lanes where there are two cores or more: decode is the slow stage of light models. */
function defaultLanes(): number {
  return Math.min(2, availableParallelism());
}

function safe<T>(f: () => T): T {
  try {
    return f();
  } catch {
    return {} as T;
  }
}

/** Several windows of one item (audio): detections by label keep the best score. */
export function mergeResults(results: readonly InferenceResult[]): InferenceResult {
  if (results.length === 1) return results[0] as InferenceResult;
  if (results.length === 0) return { detections: [] };
  const last = results[results.length - 1] as InferenceResult;
  const anyBoxes = results.some((r) => r.detections.some((d) => d.box));
  if (anyBoxes) return { ...last, detections: results.flatMap((r) => r.detections) };
  const byLabel = new Map<string, Detection>();
  for (const r of results) {
    for (const d of r.detections) {
      const cur = byLabel.get(d.label);
      if (!cur || d.score > cur.score) byLabel.set(d.label, d);
    }
  }
  return { ...last, detections: [...byLabel.values()] };
}

/** The agent core's entry point: a pipeline for one source, one model bundle and its sinks. */
export function createPipeline(opts: PipelineOptions, deps: PipelineDeps = {}): PipelineHandle {
  return new PipelineRunner(opts, deps);
}
