import { z } from 'zod';
import { errorInfoSchema, idSchema, messageIdSchema, schemaVersion, timestampSchema } from './common';

/** Commands every agent understands; the topic's last level is the name. */
export const COMMAND_NAMES = ['report-now', 'restart-pipeline', 'snapshot', 'reload-config'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

const jsonScalar = z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]);

/** A command: executed at most once per id, never after `expiresAt`. */
export const commandSchema = z.strictObject({
  v: schemaVersion,
  id: messageIdSchema,
  ts: timestampSchema,
  expiresAt: timestampSchema,
  args: z.record(z.string().max(64), jsonScalar).optional(),
});
export type CommandMessage = z.infer<typeof commandSchema>;

export const commandResultSchema = z.strictObject({
  v: schemaVersion,
  id: messageIdSchema,
  ts: timestampSchema,
  /** The id of the command this answers. */
  cmdId: messageIdSchema,
  name: idSchema,
  ok: z.boolean(),
  result: z.record(z.string().max(64), jsonScalar).optional(),
  error: errorInfoSchema.optional(),
});
export type CommandResultMessage = z.infer<typeof commandResultSchema>;
