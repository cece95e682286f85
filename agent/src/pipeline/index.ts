/**
 * The inference pipeline: how the agent core runs a model bundle on a source and hands events to sinks.
 *
 *   const pipeline = createPipeline({ id, source, bundle, rules, sinks: [outbox], snapshots: { dir } });
 *   await pipeline.start();            // loads + warms the model, starts the source
 *   await pipeline.swapModel(bundle2); // no frame dropped; the old model stays on failure
 *   pipeline.stats();                  // for telemetry
 *   await pipeline.stop();
 *
 * The agent core uses `createPipelineHost` (a PipelineHost: desired pipeline configs + installed models in,
 * sources built by agent/src/sources, hot swaps when only the model changed).
 */
export * from './types';
export { createPipeline, PipelineRunner, mergeResults, type PipelineDeps } from './runner';
export { parseSpec, checkSpecAgainstModel, type ParsedSpec, type TensorMeta } from './spec';
export { LoadedModel } from './inference/model';
export {
  openSession,
  providerOrder,
  runSession,
  type OpenedSession,
  type ProviderFallback,
} from './inference/session';
export { preprocessImage, frameSize, openFrame, type PreparedImage } from './preprocess/image';
export { computeGeometry, inputBoxToFrame, type Geometry } from './preprocess/geometry';
export { pixelsToTensor, type TensorData } from './preprocess/tensor';
export { AudioWindower } from './preprocess/audio';
export { sensorToTensor, resolveShape } from './preprocess/sensor';
export {
  createPostprocessor,
  type Postprocessor,
  type Outputs,
  type OutputTensor,
  type PostContext,
} from './postprocess';
export { ClassificationPostprocessor, softmax, topK } from './postprocess/classification';
export { YoloPostprocessor } from './postprocess/yolo';
export { SsdPostprocessor } from './postprocess/ssd';
export { generateAnchors, ANCHOR_PRESETS } from './postprocess/anchors';
export { VadPostprocessor } from './postprocess/vad';
export { RawPostprocessor, tensorStatistics } from './postprocess/raw';
export { nms, iou, type Candidate } from './postprocess/nms';
export { applyRules, type Match } from './rules/filter';
export { EventTracker, toEventMessage, type Occurrence, type Transition } from './rules/events';
export { pointInPolygon, zoneOf } from './rules/zones';
export { SnapshotStore, renderSnapshot, overlaySvg } from './output/snapshots';
export { LatencyWindow, RateMeter } from './output/latency';
export { Preparer, type Prepared } from './prepare';
export { createPipelineHost, DefaultPipelineHost, inferenceFrom, type PipelineHostOptions } from './host';
