/**
 * The contract between the pipeline (preprocess -> inference -> postprocess -> rules -> sinks) and the
 * code around it: sources (agent/src/sources/**) push items in, the agent core starts pipelines from its
 * desired state and gives them sinks (the outbox implements `EventSink`).
 *
 * Only types here, so that both sides can code against it without importing each other's code.
 */
import type { Clock, EventMessage, Rules } from '@perch/shared';

export type { Clock, EventMessage } from '@perch/shared';

// ---------------------------------------------------------------------------------------------------------
// What sources produce

/** Raw interleaved 8-bit pixels: width * height * channels bytes, row-major, no padding. */
export interface RawImageInfo {
  readonly width: number;
  readonly height: number;
  /** 1 grey, 3 RGB, 4 RGBA. Always RGB order; the preprocessor swaps to BGR if the model wants it. */
  readonly channels: 1 | 3 | 4;
}

/** One video frame or still image. */
export interface Frame {
  readonly kind: 'frame';
  /** Encoded JPEG/PNG/WebP bytes, or raw pixels when `raw` is set. The pipeline never mutates it. */
  readonly data: Buffer;
  readonly raw?: RawImageInfo;
  /** Capture time, ms since the epoch (the source's clock). */
  readonly ts: number;
  /** Per-source sequence number, increasing by one per item produced (gaps mean the source dropped). */
  readonly seq: number;
}

/** A window of 16 kHz (see `sampleRate`) mono audio, float samples in -1..1. */
export interface AudioWindow {
  readonly kind: 'audio';
  readonly samples: Float32Array;
  readonly sampleRate: number;
  readonly ts: number;
  readonly seq: number;
}

/** A window of numeric sensor readings, flattened; `shape` (if given) is how the values are laid out. */
export interface SensorWindow {
  readonly kind: 'sensor';
  readonly values: Float32Array;
  readonly shape?: readonly number[];
  readonly ts: number;
  readonly seq: number;
}

export type SourceItem = Frame | AudioWindow | SensorWindow;
export type SourceItemKind = SourceItem['kind'];

// ---------------------------------------------------------------------------------------------------------
// Sources

export type SourceState = 'starting' | 'running' | 'backoff' | 'stopped' | 'failed';

export interface CodedErrorInfo {
  /** An ErrorCode from @perch/shared (sources.ts or pipeline.ts). */
  readonly code: string;
  readonly message: string;
  /** ms since the epoch. */
  readonly at: number;
}

export interface SourceHealth {
  readonly state: SourceState;
  /** When `state` was entered, ms since the epoch. */
  readonly since: number;
  readonly restarts: number;
  readonly lastError?: CodedErrorInfo;
}

export interface SourceStats {
  /** Items handed to the pipeline. */
  readonly produced: number;
  /** Items the source itself had to drop (e.g. ffmpeg output not read in time). */
  readonly dropped: number;
  /** Coded errors seen, by code. */
  readonly errors: Readonly<Record<string, number>>;
  readonly lastItemTs?: number;
}

/**
 * A source pushes items; the pipeline owns the bounded queue (it drops the oldest item when inference falls
 * behind, and counts it), so `onItem` must be cheap and never blocks. A source never throws out of its
 * own loop: failures become `health().state` / `lastError`, and it restarts itself with backoff.
 */
export interface Source<T extends SourceItem = SourceItem> {
  readonly id: string;
  /** The kind of item it yields; the pipeline checks it against the model's input kind. */
  readonly itemKind: T['kind'];
  /** Resolves once the source has begun (not necessarily produced anything); rejects with a PerchError
   * only for configuration errors that retrying cannot fix. */
  start(onItem: (item: T) => void): Promise<void>;
  /** Idempotent; resolves when child processes and timers are gone. */
  stop(): Promise<void>;
  health(): SourceHealth;
  stats(): SourceStats;
}

// ---------------------------------------------------------------------------------------------------------
// Model bundle

/** What the agent's model store hands to a pipeline: one signed unit of model + spec + labels. */
export interface ModelBundle {
  /** Model name and version (ids as in the desired state); reported in stats and events. */
  readonly name: string;
  readonly version: string;
  /** Path of the .onnx file, or its bytes (for bundles decrypted in memory). */
  readonly model: string | Uint8Array;
  /** The spec.json content: validated by the pipeline (a bad one is a coded error, not a crash). */
  readonly spec: unknown;
  /** From the bundle's labels file; the spec's own `labels` win when both exist. */
  readonly labels?: readonly string[];
}

// ---------------------------------------------------------------------------------------------------------
// Geometry and detections

/** Axis-aligned box in frame pixels (x1,y1 top-left; x2,y2 bottom-right). */
export interface Box {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

/** A point in normalised frame coordinates: 0..1 from the left/top edge. */
export type Point = readonly [x: number, y: number];

export interface Detection {
  readonly label: string;
  readonly classIndex: number;
  readonly score: number;
  /** In frame pixels; absent for classification, VAD and raw. */
  readonly box?: Box;
  /** Extra points (e.g. BlazeFace's six landmarks), frame pixels. */
  readonly keypoints?: readonly (readonly [number, number])[];
}

export interface TensorStatistics {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: string;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
  /** Index of the largest element. */
  readonly argmax: number;
  readonly nonFinite: number;
}

/** What a postprocessor makes of one inference. */
export interface InferenceResult {
  readonly detections: readonly Detection[];
  /** Present for the raw postprocessor. */
  readonly tensors?: readonly TensorStatistics[];
  /** Frame size the boxes refer to (absent for audio/sensor). */
  readonly frame?: { readonly width: number; readonly height: number };
}

// ---------------------------------------------------------------------------------------------------------
// Rules and events

/**
 * The desired state's rules (labels of interest, minScore, minBoxArea, zones as normalised polygons,
 * holdOffMs; see shared `rulesSchema`), plus runner-only knobs.
 */
export interface RulesConfig extends Rules {
  /** While an event is open, `update` is emitted at most this often. Default 1000 ms. */
  readonly updateIntervalMs?: number;
}

/** A stored snapshot: `ref` goes into the event, `path` is where the agent keeps the JPEG. */
export interface SnapshotRef {
  readonly ref: string;
  readonly path: string;
  readonly bytes: number;
}

/**
 * The agent's outbox implements this. Events are shared `EventMessage`s (validated by `eventSchema`), ready
 * to publish on perch/v1/devices/{id}/events: box normalised to the frame, `snapshot` a ref.
 * `emit` should not throw; a throw or rejection is counted as E_PIPELINE_SINK and the pipeline goes on.
 */
export interface EventSink {
  emit(event: EventMessage): void | Promise<void>;
}

/** Optional observer of every inference (Home Assistant entities, debug UIs). */
export interface ResultSink {
  onResult(pipelineId: string, result: InferenceResult, item: { ts: number; seq: number }): void;
}

// ---------------------------------------------------------------------------------------------------------
// Running a pipeline

/** Renders and stores a snapshot (a SnapshotStore; one may be shared by several pipelines). */
export interface SnapshotWriter {
  save(
    pipelineId: string,
    frame: Frame,
    size: { readonly width: number; readonly height: number },
    detections: readonly Detection[],
    ts: number,
  ): Promise<SnapshotRef>;
}

export interface SnapshotConfig {
  readonly dir: string;
  /** Oldest snapshots are deleted when the folder would exceed this. Default 50 MB. */
  readonly maxBytes?: number;
  /** JPEG quality 1..100. Default 80. */
  readonly quality?: number;
}

/**
 * What the runner needs. The agent core maps its desired-state pipeline config (source config -> a Source
 * built by agent/src/sources, model ref -> a ModelBundle from the model store) onto this.
 */
export interface PipelineOptions {
  /** Validated id (^[a-z0-9][a-z0-9-]{0,63}$). */
  readonly id: string;
  readonly source: Source;
  readonly bundle: ModelBundle;
  readonly rules?: RulesConfig;
  readonly sinks: readonly EventSink[];
  readonly resultSinks?: readonly ResultSink[];
  readonly inference?: InferenceOptions;
  /** Items waiting for inference; 1 or 2 (default 1). The oldest is dropped when full. */
  readonly queueSize?: number;
  /** Frames decoded at once (1..4), handed on in arrival order; image models only. Default 2 on machines
   * with two cores or more (light models are decode-bound: BlazeFace on 1080p JPEGs), else 1. */
  readonly prepareConcurrency?: number;
  /** Absent (and no `snapshotWriter`) = no snapshots. */
  readonly snapshots?: SnapshotConfig;
  /** A shared writer instead of a folder of its own (the host shares one store and one budget). */
  readonly snapshotWriter?: SnapshotWriter;
  /** Defaults to the system clock; tests pass a ManualClock. */
  readonly clock?: Clock;
}

export interface InferenceOptions {
  /** onnxruntime intra-op threads; default: the number of cores less one (at least 1), the other decodes. */
  readonly intraOpThreads?: number;
  readonly interOpThreads?: number;
  /** Tried in order; 'cpu' is always appended. E.g. ['tensorrt', 'cuda']. */
  readonly executionProviders?: readonly string[];
  /** Warm-up runs on a zero tensor before the session serves frames. Default 1. */
  readonly warmupRuns?: number;
  /** Run onnxruntime on the main thread instead of a worker thread. It blocks the event loop for each
   * inference (onnxruntime-node's run is synchronous underneath), so only for comparisons and tools. */
  readonly inProcess?: boolean;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly count: number;
}

export type PipelineState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface PipelineStats {
  readonly id: string;
  readonly state: PipelineState;
  readonly model?: { readonly version: string; readonly provider: string; readonly loadedAt: number };
  readonly received: number;
  readonly processed: number;
  /** Dropped by the pipeline's bounded queue (oldest first). */
  readonly dropped: number;
  /** Items processed per second over the last window. */
  readonly fps: number;
  /** ms, over a sliding window of recent items. `total` is source hand-off to sinks. */
  readonly latency: {
    readonly queue: LatencySummary;
    readonly preprocess: LatencySummary;
    readonly infer: LatencySummary;
    readonly postprocess: LatencySummary;
    readonly rules: LatencySummary;
    readonly total: LatencySummary;
  };
  readonly detections: number;
  readonly events: number;
  readonly snapshots: number;
  /** Coded errors by code, with the last message. */
  readonly errors: Readonly<Record<string, { readonly count: number; readonly last: CodedErrorInfo }>>;
  readonly lastError?: CodedErrorInfo;
  readonly source?: SourceHealth & { readonly stats: SourceStats };
  /** Latest tensor statistics (raw postprocessor only). */
  readonly tensors?: readonly TensorStatistics[];
}

/** A running pipeline, as returned by `createPipeline`. */
export interface PipelineHandle {
  readonly id: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Loads and warms the new bundle beside the old one, then switches between two items. Rejects (and keeps
   * the old model) if the new one fails to load or does not match its spec. */
  swapModel(bundle: ModelBundle): Promise<void>;
  /** The latest frame with its detections drawn, stored; undefined when there is no frame or no writer. */
  snapshot(): Promise<SnapshotRef | undefined>;
  stats(): PipelineStats;
}
