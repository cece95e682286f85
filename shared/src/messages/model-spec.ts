import { z } from 'zod';

/**
 * The `spec.json` of a model bundle: how Perch feeds the model and how it reads the answer.
 * The controller validates uploads against `modelSpecSchema` (and then checks the tensor names and
 * shapes against the ONNX file); the agent's pipeline builds its preprocessor and postprocessor from it.
 *
 * Pixel conventions: sharp decodes to 8-bit values 0..255.
 * - `meanStd`:     value = (pixel / 255 - mean[c]) / std[c]   (ImageNet style; mean/std on the 0..1 scale)
 * - `scaleOffset`: value = pixel * scale + offset             (e.g. scale 1/127.5, offset -1 for -1..1)
 * - `none`:        value = pixel                              (float32 0..255, or the uint8 byte as is)
 */

export const MODEL_SPEC_VERSION = 1;

/** Limits that keep a hostile spec from asking for absurd allocations. */
export const MODEL_SPEC_LIMITS = {
  maxImageSide: 4096,
  maxLabels: 100_000,
  maxTensorElements: 16_777_216,
  maxNameLength: 256,
} as const;

const tensorName = z.string().min(1).max(MODEL_SPEC_LIMITS.maxNameLength);
const side = z.number().int().min(1).max(MODEL_SPEC_LIMITS.maxImageSide);
const perChannel = z.union([z.number(), z.array(z.number()).min(1).max(4)]);
const unit = z.number().min(0).max(1);

export const tensorLayoutSchema = z.enum(['NCHW', 'NHWC']);
export const colourOrderSchema = z.enum(['RGB', 'BGR']);
export const tensorDtypeSchema = z.enum(['float32', 'uint8']);
export const resizeModeSchema = z.enum(['stretch', 'letterbox', 'crop']);

export const normalisationSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('meanStd'),
    mean: perChannel,
    std: perChannel.refine(
      (v) => (Array.isArray(v) ? v.every((x) => x !== 0) : v !== 0),
      'std must not be 0',
    ),
  }),
  z.strictObject({ kind: z.literal('scaleOffset'), scale: z.number(), offset: z.number().default(0) }),
  z.strictObject({ kind: z.literal('none') }),
]);

/** An image model: frames are decoded, resized and laid out by the preprocessor. */
export const imageInputSchema = z.strictObject({
  kind: z.literal('image'),
  name: tensorName,
  layout: tensorLayoutSchema,
  width: side,
  height: side,
  colour: colourOrderSchema.default('RGB'),
  dtype: tensorDtypeSchema.default('float32'),
  resize: resizeModeSchema.default('stretch'),
  /** Fill of the letterbox bars, 0..255 per channel in RGB order. */
  padColour: z
    .tuple([
      z.number().int().min(0).max(255),
      z.number().int().min(0).max(255),
      z.number().int().min(0).max(255),
    ])
    .default([114, 114, 114]),
  normalisation: normalisationSchema.prefault({ kind: 'none' }),
});

/** An audio model: 16 kHz mono float32 windows of `windowSamples`. */
export const audioInputSchema = z.strictObject({
  kind: z.literal('audio'),
  name: tensorName,
  sampleRate: z.number().int().min(1000).max(192_000).default(16_000),
  windowSamples: z.number().int().min(1).max(MODEL_SPEC_LIMITS.maxTensorElements),
});

/** A generic tensor (sensor windows): the window is reshaped to `shape` (-1 allowed once). */
export const tensorInputSchema = z.strictObject({
  kind: z.literal('tensor'),
  name: tensorName,
  shape: z.array(z.number().int().min(-1)).min(1).max(8),
  dtype: tensorDtypeSchema.default('float32'),
});

export const modelInputSchema = z.discriminatedUnion('kind', [
  imageInputSchema,
  audioInputSchema,
  tensorInputSchema,
]);

export const classificationParamsSchema = z.strictObject({
  output: tensorName.optional(),
  /** `auto` applies softmax unless the scores already look like probabilities (all in 0..1, sum ~1). */
  softmax: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  topK: z.number().int().min(1).max(1000).default(5),
  minScore: unit.default(0),
});

export const yoloParamsSchema = z.strictObject({
  output: tensorName.optional(),
  /**
   * v5: [1, N, 5 + C] rows of cx, cy, w, h, objectness, class scores.
   * v8: [1, 4 + C, N] columns of cx, cy, w, h, class scores (no objectness); a transposed [1, N, 4 + C] is accepted.
   */
  version: z.enum(['v5', 'v8']),
  scoreThreshold: unit.default(0.25),
  iouThreshold: unit.default(0.45),
  maxDetections: z.number().int().min(1).max(10_000).default(100),
  /** NMS per class (the default) or over all classes at once. */
  classAgnostic: z.boolean().default(false),
  /** Box coordinates are in input pixels (the default) or already normalised 0..1. */
  normalisedBoxes: z.boolean().default(false),
});

/** Anchor generation as in MediaPipe's SsdAnchorsCalculator (fixed anchor size, centres on a grid). */
export const ssdAnchorsSchema = z.strictObject({
  strides: z.array(z.number().int().min(1)).min(1).max(8),
  anchorsPerCell: z.array(z.number().int().min(1).max(64)).min(1).max(8),
  offsetX: z.number().default(0.5),
  offsetY: z.number().default(0.5),
});

export const ssdParamsSchema = z.strictObject({
  /** Score outputs, concatenated in order (BlazeFace splits them by feature map). */
  scoreOutputs: z.array(tensorName).min(1).max(8),
  boxOutputs: z.array(tensorName).min(1).max(8),
  /** A known anchor layout, or explicit generation parameters. */
  anchors: z.union([z.literal('blazeface-front-128'), z.literal('blazeface-back-256'), ssdAnchorsSchema]),
  /** Box offsets are divided by these (input size in pixels for BlazeFace). */
  xScale: z.number().positive(),
  yScale: z.number().positive(),
  wScale: z.number().positive(),
  hScale: z.number().positive(),
  /** Raw scores are logits and need a sigmoid. */
  sigmoid: z.boolean().default(true),
  scoreClip: z.number().positive().default(100),
  scoreThreshold: unit.default(0.5),
  iouThreshold: unit.default(0.3),
  maxDetections: z.number().int().min(1).max(10_000).default(100),
  /** Label of every detection (single-class SSDs such as BlazeFace). */
  label: z.string().min(1).max(MODEL_SPEC_LIMITS.maxNameLength).default('face'),
});

/** BlazeFace front 128 (MediaPipe face_detection_front, as converted for Barracuda/ONNX) needs no parameters. */
export const blazefaceParamsSchema = ssdParamsSchema.extend({
  scoreOutputs: ssdParamsSchema.shape.scoreOutputs.default(['Identity:0', 'Identity_1:0']),
  boxOutputs: ssdParamsSchema.shape.boxOutputs.default(['Identity_2:0', 'Identity_3:0']),
  anchors: ssdParamsSchema.shape.anchors.default('blazeface-front-128'),
  xScale: z.number().positive().default(128),
  yScale: z.number().positive().default(128),
  wScale: z.number().positive().default(128),
  hScale: z.number().positive().default(128),
  scoreThreshold: unit.default(0.6),
});

export const vadParamsSchema = z.strictObject({
  /** Silero v4 takes h/c state inputs; v5 takes one `state` input. Names default to Silero's own. */
  variant: z.enum(['silero-v4', 'silero-v5']).default('silero-v4'),
  speechThreshold: unit.default(0.5),
  /** Hysteresis: speech ends when the probability falls below this. */
  silenceThreshold: unit.default(0.35),
  output: tensorName.default('output'),
});

export const rawParamsSchema = z.strictObject({
  outputs: z.array(tensorName).max(64).optional(),
});

export const postprocessorSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('classification'), params: classificationParamsSchema.prefault({}) }),
  z.strictObject({ kind: z.literal('yolo'), params: yoloParamsSchema }),
  z.strictObject({ kind: z.literal('ssd'), params: ssdParamsSchema }),
  z.strictObject({ kind: z.literal('blazeface'), params: blazefaceParamsSchema.prefault({}) }),
  z.strictObject({ kind: z.literal('vad'), params: vadParamsSchema.prefault({}) }),
  z.strictObject({ kind: z.literal('raw'), params: rawParamsSchema.prefault({}) }),
]);

export const modelSpecSchema = z.strictObject({
  schemaVersion: z.literal(MODEL_SPEC_VERSION).default(MODEL_SPEC_VERSION),
  input: modelInputSchema,
  postprocessor: postprocessorSchema,
  /** Class index -> label. May instead come from the bundle's labels file; the spec wins when both exist. */
  labels: z
    .array(z.string().max(MODEL_SPEC_LIMITS.maxNameLength))
    .max(MODEL_SPEC_LIMITS.maxLabels)
    .optional(),
});

export type TensorLayout = z.infer<typeof tensorLayoutSchema>;
export type ColourOrder = z.infer<typeof colourOrderSchema>;
export type TensorDtype = z.infer<typeof tensorDtypeSchema>;
export type ResizeMode = z.infer<typeof resizeModeSchema>;
export type Normalisation = z.infer<typeof normalisationSchema>;
export type ImageInputSpec = z.infer<typeof imageInputSchema>;
export type AudioInputSpec = z.infer<typeof audioInputSchema>;
export type TensorInputSpec = z.infer<typeof tensorInputSchema>;
export type ModelInputSpec = z.infer<typeof modelInputSchema>;
export type ClassificationParams = z.infer<typeof classificationParamsSchema>;
export type YoloParams = z.infer<typeof yoloParamsSchema>;
export type SsdAnchorsParams = z.infer<typeof ssdAnchorsSchema>;
export type SsdParams = z.infer<typeof ssdParamsSchema>;
export type BlazefaceParams = z.infer<typeof blazefaceParamsSchema>;
export type VadParams = z.infer<typeof vadParamsSchema>;
export type RawParams = z.infer<typeof rawParamsSchema>;
export type PostprocessorSpec = z.infer<typeof postprocessorSchema>;
export type PostprocessorKind = PostprocessorSpec['kind'];
/** A validated spec with every default filled in. */
export type ModelSpec = z.infer<typeof modelSpecSchema>;
/** What a bundle author writes (defaults may be left out). */
export type ModelSpecInput = z.input<typeof modelSpecSchema>;

/** Tensor names the spec expects the model to have, for the controller's upload check. */
export function specTensorNames(spec: ModelSpec): { inputs: string[]; outputs: string[] } {
  const inputs = [spec.input.name];
  const outputs: string[] = [];
  const pp = spec.postprocessor;
  switch (pp.kind) {
    case 'classification':
    case 'yolo':
      if (pp.params.output) outputs.push(pp.params.output);
      break;
    case 'ssd':
    case 'blazeface':
      outputs.push(...pp.params.scoreOutputs, ...pp.params.boxOutputs);
      break;
    case 'vad':
      outputs.push(pp.params.output);
      if (pp.params.variant === 'silero-v4') inputs.push('sr', 'h', 'c');
      else inputs.push('sr', 'state');
      break;
    case 'raw':
      outputs.push(...(pp.params.outputs ?? []));
      break;
  }
  return { inputs, outputs };
}
