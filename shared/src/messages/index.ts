import type { z } from 'zod';
import type { TopicKind } from '../topics';
import { commandResultSchema, commandSchema } from './commands';
import { desiredStateSchema } from './desired';
import { eventSchema } from './events';
import { reportedStateSchema } from './reported';
import { statusSchema } from './status';
import { telemetrySchema } from './telemetry';

export * from './common';
export * from './desired';
export * from './reported';
export * from './status';
export * from './telemetry';
export * from './telemetry-check';
export * from './events';
export * from './commands';

/** The typed map from topic kind to the schema of the payload on it. */
export const messageSchemas = {
  desired: desiredStateSchema,
  reported: reportedStateSchema,
  status: statusSchema,
  telemetry: telemetrySchema,
  events: eventSchema,
  cmd: commandSchema,
  'cmd-result': commandResultSchema,
} as const satisfies Record<TopicKind, z.ZodType>;

export type MessageKind = keyof typeof messageSchemas;
export type MessageOf<K extends MessageKind> = z.infer<(typeof messageSchemas)[K]>;
