import { z } from 'zod';
import { messageIdSchema, schemaVersion, timestampSchema } from './common';

/**
 * Metric names are dotted paths: `system.cpu_percent`, `agent.outbox_depth`,
 * `pipeline.front-door.fps`, `pipeline.front-door.latency_p95_ms.infer`.
 */
export const METRIC_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
export const metricNameSchema = z
  .string()
  .regex(METRIC_NAME_PATTERN, 'metric names are [a-z0-9_.-], at most 128');

/** Limits of one telemetry message. */
export const MAX_METRICS = 1000;
export const MAX_INFO_ENTRIES = 200;
export const MAX_INFO_STRING = 512;

export const telemetrySchema = z.strictObject({
  v: schemaVersion,
  id: messageIdSchema,
  ts: timestampSchema,
  /** Numeric samples, finite numbers only. */
  metrics: z.record(metricNameSchema, z.number()).refine((m) => Object.keys(m).length <= MAX_METRICS, {
    message: 'at most 1000 metrics per message',
  }),
  /** Non-numeric facts (execution provider, model versions, source state ...). */
  info: z
    .record(metricNameSchema, z.union([z.string().max(MAX_INFO_STRING), z.boolean(), z.null()]))
    .refine((m) => Object.keys(m).length <= MAX_INFO_ENTRIES, {
      message: 'at most 200 info entries per message',
    })
    .optional(),
});
export type TelemetryMessage = z.infer<typeof telemetrySchema>;
