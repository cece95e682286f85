import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { EVENT_PHASES, formatIssues, idSchema, PerchError } from '@perch/shared';
import type { WebhookEventInput, WebhookFilter, WebhookSubscription } from './types';

export const MIN_SECRET_LENGTH = 32;

const filterSchema = z.strictObject({
  devices: z.array(idSchema).max(1000).optional(),
  tags: z.array(z.string().min(1).max(64)).max(100).optional(),
  labels: z.array(z.string().min(1).max(128)).max(256).optional(),
  phases: z.array(z.enum(EVENT_PHASES)).max(3).optional(),
});

/** What an operator sends to create a subscription (the API route validates its body with this). */
export const webhookSubscriptionInputSchema = z.strictObject({
  url: z
    .string()
    .max(2048)
    .url()
    .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL'),
  secret: z.string().min(MIN_SECRET_LENGTH).max(256).optional(),
  filter: filterSchema.default({}),
  enabled: z.boolean().default(true),
  description: z.string().max(500).optional(),
});
export type WebhookSubscriptionInput = z.input<typeof webhookSubscriptionInputSchema>;

/** Validates the input (E_WEBHOOK_INVALID) and makes a subscription; a secret is generated when none is given. */
export function newSubscription(input: unknown, now: number): WebhookSubscription {
  const parsed = webhookSubscriptionInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new PerchError(
      'E_WEBHOOK_INVALID',
      `invalid webhook subscription: ${formatIssues(parsed.error).join('; ')}`,
    );
  }
  const v = parsed.data;
  return {
    id: `wh-${randomUUID()}`,
    url: v.url,
    secret: v.secret ?? `whsec_${randomBytes(32).toString('base64url')}`,
    filter: v.filter as WebhookFilter,
    enabled: v.enabled,
    ...(v.description === undefined ? {} : { description: v.description }),
    createdAt: now,
  };
}

/** Every list given in the filter must contain a matching entry; an absent or empty list matches all. */
export function matchesFilter(filter: WebhookFilter, input: WebhookEventInput): boolean {
  const any = <T>(list: readonly T[] | undefined, test: (x: T) => boolean) =>
    !list || list.length === 0 || list.some(test);
  return (
    any(filter.devices, (d) => d === input.deviceId) &&
    any(filter.tags, (t) => (input.tags ?? []).includes(t)) &&
    any(filter.labels, (l) => l === input.event.label) &&
    any(filter.phases, (p) => p === input.event.phase)
  );
}
