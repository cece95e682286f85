/**
 * Webhooks for systems that do not speak MQTT: signed, retried, dead-lettered. See
 * docs/INTEGRATIONS.md for the receiver's side.
 */
export { WebhookDispatcher, type WebhookDispatcherOptions, type WebhookStats } from './dispatcher';
export { retryDelay, type BackoffOptions } from './backoff';
export {
  signWebhook,
  verifyWebhook,
  SIGNATURE_HEADER,
  WEBHOOK_ID_HEADER,
  DEFAULT_TOLERANCE_S,
} from './signature';
export {
  matchesFilter,
  newSubscription,
  webhookSubscriptionInputSchema,
  MIN_SECRET_LENGTH,
  type WebhookSubscriptionInput,
} from './subscriptions';
export { MemoryWebhookStore } from './memory-store';
export { KyselyWebhookStore } from './kysely-store';
export type {
  Delivery,
  WebhookBody,
  WebhookEventInput,
  WebhookFilter,
  WebhookStore,
  WebhookSubscription,
} from './types';
