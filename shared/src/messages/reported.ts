import { z } from 'zod';
import {
  errorInfoSchema,
  idSchema,
  schemaVersion,
  sha256Schema,
  timestampSchema,
  versionSchema,
} from './common';

export const MODEL_STATES = [
  'pending',
  'downloading',
  'verifying',
  'staged',
  'trial',
  'active',
  'failed',
  'reverted',
] as const;
export type ModelState = (typeof MODEL_STATES)[number];

export const reportedModelSchema = z.strictObject({
  name: idSchema,
  version: versionSchema,
  sha256: sha256Schema,
  state: z.enum(MODEL_STATES),
  /** Download progress in percent while downloading. */
  progress: z.number().min(0).max(100).optional(),
  securityVersion: z.number().int().min(0).optional(),
  error: errorInfoSchema.optional(),
});
export type ReportedModel = z.infer<typeof reportedModelSchema>;

export const PIPELINE_STATES = ['starting', 'running', 'degraded', 'stopped', 'failed'] as const;
export type PipelineState = (typeof PIPELINE_STATES)[number];

export const reportedPipelineSchema = z.strictObject({
  id: idSchema,
  state: z.enum(PIPELINE_STATES),
  model: idSchema.optional(),
  error: errorInfoSchema.optional(),
});

/** What the device has. Published retained, QoS 1, after every change. */
export const reportedStateSchema = z.strictObject({
  v: schemaVersion,
  ts: timestampSchema,
  /** The desired revision this report answers (the last one the agent has seen). */
  rev: z.number().int().min(0),
  /** True once every step for `rev` has run (successfully or not). */
  settled: z.boolean(),
  models: z.array(reportedModelSchema).max(64),
  pipelines: z.array(reportedPipelineSchema).max(32),
  agent: z.strictObject({
    version: z.string().min(1).max(64),
    startedAt: timestampSchema,
    /** The settings in effect: the desired state's `config`, else the agent's own configuration. */
    config: z
      .strictObject({
        telemetryIntervalS: z.number().int().min(1).max(86_400),
        logLevel: z.enum(['error', 'warn', 'info', 'debug']),
      })
      .optional(),
  }),
  /** Set when the device clock is before the build time and metadata expiry cannot be trusted. */
  untrustedTime: z.boolean().optional(),
});
export type ReportedState = z.infer<typeof reportedStateSchema>;
