import { z } from 'zod';
import { schemaVersion, timestampSchema } from './common';

/** Availability. Published retained; the `offline` form is also the MQTT will. */
export const statusSchema = z.strictObject({
  v: schemaVersion,
  state: z.enum(['online', 'offline']),
  ts: timestampSchema,
  /** Why the device went offline, when it says so itself (clean stop, revoked ...). */
  reason: z.string().max(200).optional(),
});
export type StatusMessage = z.infer<typeof statusSchema>;
