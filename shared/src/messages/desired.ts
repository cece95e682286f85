import { z } from 'zod';
import { idSchema, schemaVersion, sha256Schema, timestampSchema, versionSchema } from './common';

/** One model the controller wants on the device, pinned to a signed TUF target. */
export const desiredModelSchema = z.strictObject({
  name: idSchema,
  version: versionSchema,
  /** TUF target path of the bundle (model, spec and labels signed as one unit). */
  target: z.string().min(1).max(512),
  sha256: sha256Schema,
  length: z
    .number()
    .int()
    .positive()
    .max(4 * 1024 ** 3),
  securityVersion: z.number().int().min(0),
});
export type DesiredModel = z.infer<typeof desiredModelSchema>;

/** A point in normalised coordinates. */
const pointSchema = z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]);

export const zoneSchema = z.strictObject({
  id: idSchema,
  points: z.array(pointSchema).min(3).max(64),
});
export type Zone = z.infer<typeof zoneSchema>;

export const rulesSchema = z.strictObject({
  labels: z.array(z.string().min(1).max(128)).max(256).optional(),
  minScore: z.number().min(0).max(1).optional(),
  /** Minimum box area as a fraction of the frame (0..1). */
  minBoxArea: z.number().min(0).max(1).optional(),
  zones: z.array(zoneSchema).max(32).optional(),
  /** How long a detection may be absent before its event ends. */
  holdOffMs: z.number().int().min(0).max(3_600_000).optional(),
});
export type Rules = z.infer<typeof rulesSchema>;

/**
 * Pipeline configuration as the controller sends it. The source is validated in detail by the
 * agent's source factory (kinds: lavfi, file, rtsp, v4l2, mjpeg, folder, snapshot-url, audio,
 * sensor-command, sensor-file, sensor-mqtt); here only its shape and size are checked.
 */
export const pipelineConfigSchema = z.strictObject({
  id: idSchema,
  /** Name of a model in `models`. */
  model: idSchema,
  source: z.looseObject({ kind: z.string().min(1).max(32) }),
  fps: z.number().positive().max(120).optional(),
  rules: rulesSchema.optional(),
  outputs: z
    .strictObject({
      events: z.boolean().optional(),
      snapshots: z.boolean().optional(),
    })
    .optional(),
  /** Free-form options for the runner (threads, queue depth ...), validated by the agent. */
  options: z.record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean()])).optional(),
});
export type PipelineConfig = z.infer<typeof pipelineConfigSchema>;

/** What the controller wants the device to run. Published retained, QoS 1. */
export const desiredStateSchema = z.strictObject({
  v: schemaVersion,
  /** Monotonic revision; the agent reports which revision it has applied. */
  rev: z.number().int().min(0),
  ts: timestampSchema,
  models: z.array(desiredModelSchema).max(32),
  pipelines: z.array(pipelineConfigSchema).max(32),
  config: z
    .strictObject({
      telemetryIntervalS: z.number().int().min(1).max(86_400).optional(),
      logLevel: z.enum(['error', 'warn', 'info', 'debug']).optional(),
    })
    .optional(),
});
export type DesiredState = z.infer<typeof desiredStateSchema>;
