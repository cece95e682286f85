import { z } from 'zod';
import {
  boxSchema,
  idSchema,
  messageIdSchema,
  schemaVersion,
  timestampSchema,
  versionSchema,
} from './common';

export const EVENT_PHASES = ['start', 'update', 'end'] as const;
export type EventPhase = (typeof EVENT_PHASES)[number];

/** What a detection looked like at one moment, for before/after in updates. */
export const detectionSchema = z.strictObject({
  label: z.string().min(1).max(128),
  score: z.number().min(0).max(1),
  box: boxSchema.optional(),
  zone: idSchema.optional(),
});

/**
 * A detection event. One tracked thing (a person in view) is one `eventId` going through
 * start -> update* -> end; each message has its own unique `id` for deduplication.
 */
export const eventSchema = z.strictObject({
  v: schemaVersion,
  id: messageIdSchema,
  ts: timestampSchema,
  eventId: messageIdSchema,
  phase: z.enum(EVENT_PHASES),
  pipeline: idSchema,
  label: z.string().min(1).max(128),
  score: z.number().min(0).max(1),
  box: boxSchema.optional(),
  zone: idSchema.optional(),
  /** Reference of a stored snapshot (fetchable through the controller). */
  snapshot: z
    .string()
    .max(256)
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional(),
  model: z.strictObject({ name: idSchema, version: versionSchema }).optional(),
  startedAt: timestampSchema.optional(),
  before: detectionSchema.optional(),
  after: detectionSchema.optional(),
  /** Extra scalar facts from the postprocessor (e.g. speech probability, count). */
  data: z.record(z.string().max(64), z.union([z.string().max(512), z.number(), z.boolean()])).optional(),
});
export type EventMessage = z.infer<typeof eventSchema>;
