import { z } from 'zod';
import { ID_PATTERN } from '../ids';

/** Version of the message schemas in this package. Bumped only for incompatible changes. */
export const SCHEMA_VERSION = 1 as const;

export const schemaVersion = z.literal(SCHEMA_VERSION);
export const idSchema = z.string().regex(ID_PATTERN, 'must match ^[a-z0-9][a-z0-9-]{0,63}$');
/** Characters of a message id (8-128 of them). */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_-]+$/;
/** A message id: unique per sender; the controller deduplicates on it. */
export const messageIdSchema = z
  .string()
  .min(8)
  .max(128)
  .regex(MESSAGE_ID_PATTERN, 'must be 8-128 characters of A-Z a-z 0-9 _ -');
/** Latest timestamp accepted: the end of the ECMAScript time range. */
export const MAX_TIMESTAMP_MS = 8.64e15;
/** Milliseconds since the Unix epoch. */
export const timestampSchema = z.number().int().min(0).max(MAX_TIMESTAMP_MS);
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');
export const versionSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'must be letters, digits and . _ + -');
export const errorInfoSchema = z.strictObject({
  code: z.string().regex(/^E_[A-Z0-9_]+$/),
  message: z.string().max(2000),
});
export type ErrorInfo = z.infer<typeof errorInfoSchema>;

/** A box in normalised frame coordinates (0..1), origin top-left. */
export const boxSchema = z.strictObject({
  x: z.number().min(0).max(1),
  y: z.number().min(0).max(1),
  w: z.number().min(0).max(1),
  h: z.number().min(0).max(1),
});
export type Box = z.infer<typeof boxSchema>;
