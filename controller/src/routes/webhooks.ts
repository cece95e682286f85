import type { FastifyPluginAsync } from 'fastify';
import { EVENT_PHASES, PerchError } from '@perch/shared';
import type { AppDeps } from '../context';
import { actorOf } from '../auth/authenticate';
import { idParam, security, tagSchema, withErrors } from '../http/schemas';
import { audit } from '../audit';
import type { Delivery, WebhookSubscription } from '../integrations/webhooks';

const filterSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    devices: { type: 'array', maxItems: 1000, items: idParam },
    tags: { type: 'array', maxItems: 100, items: tagSchema },
    labels: { type: 'array', maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 128 } },
    phases: { type: 'array', maxItems: 3, items: { type: 'string', enum: [...EVENT_PHASES] } },
  },
} as const;

const webhookView = {
  type: 'object',
  required: ['id', 'url', 'filter', 'enabled', 'createdAt'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    filter: filterSchema,
    enabled: { type: 'boolean' },
    description: { type: 'string' },
    createdAt: { type: 'integer' },
  },
} as const;

const deadLetterView = {
  type: 'object',
  required: ['id', 'subscriptionId', 'createdAt', 'attempts', 'body'],
  properties: {
    id: { type: 'string' },
    subscriptionId: { type: 'string' },
    createdAt: { type: 'integer' },
    attempts: { type: 'integer' },
    lastError: { type: 'string' },
    lastStatus: { type: 'integer' },
    deadAt: { type: 'integer' },
    /** The exact body the receiver was sent (id, type, createdAt, deviceId, event). */
    body: { type: 'object', additionalProperties: true },
  },
} as const;

const deadLetterList = {
  type: 'object',
  required: ['deadLetters'],
  properties: { deadLetters: { type: 'array', items: deadLetterView } },
} as const;

const limitQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: idParam } } as const;

function view(s: WebhookSubscription) {
  return {
    id: s.id,
    url: s.url,
    filter: s.filter,
    enabled: s.enabled,
    ...(s.description === undefined ? {} : { description: s.description }),
    createdAt: s.createdAt,
  };
}

function deadView(d: Delivery) {
  return {
    id: d.id,
    subscriptionId: d.subscriptionId,
    createdAt: d.createdAt,
    attempts: d.attempts,
    ...(d.lastError === undefined ? {} : { lastError: d.lastError }),
    ...(d.lastStatus === undefined ? {} : { lastStatus: d.lastStatus }),
    ...(d.deadAt === undefined ? {} : { deadAt: d.deadAt }),
    body: JSON.parse(d.body) as Record<string, unknown>,
  };
}

/**
 * Webhook subscriptions and their dead letters. Creating and deleting subscriptions is admin-only
 * (the secret is returned once, at creation); reading them and handling dead letters needs operator.
 */
export const webhookRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { webhooks, store, clock } = deps;

  app.post<{ Body: Record<string, unknown> }>(
    '/webhooks',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a webhook subscription (the signing secret is returned once)',
        tags: ['webhooks'],
        security: security('admin'),
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            secret: { type: 'string', minLength: 32, maxLength: 256 },
            filter: filterSchema,
            enabled: { type: 'boolean' },
            description: { type: 'string', maxLength: 500 },
          },
        },
        response: withErrors({
          201: {
            ...webhookView,
            required: [...webhookView.required, 'secret'],
            properties: { ...webhookView.properties, secret: { type: 'string' } },
          },
        }),
      },
    },
    async (request, reply) => {
      const sub = await webhooks.createSubscription(request.body);
      await audit(store.db, clock.now(), {
        actor: actorOf(request.principal),
        action: 'webhook.create',
        target: sub.id,
        details: { url: sub.url, filter: sub.filter },
      });
      return reply.code(201).send({ ...view(sub), secret: sub.secret });
    },
  );

  app.get(
    '/webhooks',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'List webhook subscriptions (without secrets)',
        tags: ['webhooks'],
        security: security('operator'),
        response: withErrors({
          200: {
            type: 'object',
            required: ['webhooks', 'pending'],
            properties: {
              webhooks: { type: 'array', items: webhookView },
              /** Deliveries queued or waiting for a retry, all subscriptions together. */
              pending: { type: 'integer' },
            },
          },
        }),
      },
    },
    async () => ({
      webhooks: (await webhooks.listSubscriptions()).map(view),
      pending: await webhooks.countPending(),
    }),
  );

  // Static paths before `/webhooks/:id`: fastify matches them first whatever the order.
  app.get<{ Querystring: { limit: number } }>(
    '/webhooks/dead-letters',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Dead letters of every subscription, newest first',
        tags: ['webhooks'],
        security: security('operator'),
        querystring: limitQuery,
        response: withErrors({ 200: deadLetterList }),
      },
    },
    async (request) => ({ deadLetters: (await webhooks.listDeadLetters(request.query.limit)).map(deadView) }),
  );

  app.post<{ Params: { id: string } }>(
    '/webhooks/dead-letters/:id/redeliver',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Put a dead letter back in the queue with a fresh attempt budget',
        tags: ['webhooks'],
        security: security('operator'),
        params: idParams,
        response: withErrors({
          200: {
            type: 'object',
            required: ['id', 'status'],
            properties: { id: { type: 'string' }, status: { type: 'string', enum: ['pending'] } },
          },
        }),
      },
    },
    async (request) => {
      await webhooks.redeliver(request.params.id);
      await audit(store.db, clock.now(), {
        actor: actorOf(request.principal),
        action: 'webhook.redeliver',
        target: request.params.id,
      });
      return { id: request.params.id, status: 'pending' as const };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/webhooks/dead-letters/:id',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Discard a dead letter that was handled elsewhere',
        tags: ['webhooks'],
        security: security('operator'),
        params: idParams,
        response: withErrors({
          200: {
            type: 'object',
            required: ['id', 'discarded'],
            properties: { id: { type: 'string' }, discarded: { type: 'boolean' } },
          },
        }),
      },
    },
    async (request) => {
      await webhooks.discardDeadLetter(request.params.id);
      await audit(store.db, clock.now(), {
        actor: actorOf(request.principal),
        action: 'webhook.discard-dead-letter',
        target: request.params.id,
      });
      return { id: request.params.id, discarded: true };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/webhooks/:id',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'One webhook subscription (without its secret)',
        tags: ['webhooks'],
        security: security('operator'),
        params: idParams,
        response: withErrors({ 200: webhookView }),
      },
    },
    async (request) => {
      const sub = await webhooks.getSubscription(request.params.id);
      if (!sub) throw new PerchError('E_WEBHOOK_NOT_FOUND', `no webhook subscription ${request.params.id}`);
      return view(sub);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/webhooks/:id',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a webhook subscription; its queued deliveries end in the dead-letter list',
        tags: ['webhooks'],
        security: security('admin'),
        params: idParams,
        response: withErrors({ 200: webhookView }),
      },
    },
    async (request) => {
      const sub = await webhooks.getSubscription(request.params.id);
      if (!sub) throw new PerchError('E_WEBHOOK_NOT_FOUND', `no webhook subscription ${request.params.id}`);
      await webhooks.deleteSubscription(sub.id);
      await audit(store.db, clock.now(), {
        actor: actorOf(request.principal),
        action: 'webhook.delete',
        target: sub.id,
      });
      return view(sub);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>(
    '/webhooks/:id/dead-letters',
    {
      config: { access: 'operator' },
      schema: {
        summary: "One subscription's dead letters, newest first",
        tags: ['webhooks'],
        security: security('operator'),
        params: idParams,
        querystring: limitQuery,
        response: withErrors({ 200: deadLetterList }),
      },
    },
    async (request) => ({
      deadLetters: (await webhooks.listDeadLetters(request.query.limit, request.params.id)).map(deadView),
    }),
  );
};
