import type { FastifyPluginAsync } from 'fastify';
import { PerchError } from '@perch/shared';
import type { AppDeps } from '../context';
import { actorOf } from '../auth/authenticate';
import { hashSecret, newId, newSecret } from '../auth/secrets';
import { idParam, security, tagSchema, withErrors } from '../http/schemas';
import { audit } from '../audit';
import type { EnrollTokenTable } from '../db/schema';

const view = {
  type: 'object',
  required: ['id', 'name', 'expiresAt', 'maxUses', 'uses', 'tags', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    expiresAt: { type: 'integer' },
    maxUses: { type: 'integer' },
    uses: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'integer' },
    revokedAt: { type: ['integer', 'null'] },
  },
} as const;

function toView(r: EnrollTokenTable) {
  return {
    id: r.id,
    name: r.name,
    expiresAt: r.expires_at,
    maxUses: r.max_uses,
    uses: r.uses,
    tags: JSON.parse(r.tags) as string[],
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}

const MAX_TTL_S = 30 * 24 * 3600;

/** Bootstrap tokens for enrollment: expiring, limited uses, tags applied to the devices they enroll. */
export const enrollTokenRoutes: FastifyPluginAsync<AppDeps> = async (app, { store, clock }) => {
  app.post<{ Body: { name?: string; ttlSeconds?: number; maxUses?: number; tags?: string[] } }>(
    '/enroll-tokens',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Create an enrollment token (the secret is shown once)',
        tags: ['enrollment'],
        security: security('operator'),
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 128 },
            ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_TTL_S, default: 3600 },
            maxUses: { type: 'integer', minimum: 1, maximum: 100000, default: 1 },
            tags: { type: 'array', items: tagSchema, maxItems: 32, uniqueItems: true, default: [] },
          },
        },
        response: withErrors({
          201: {
            ...view,
            required: [...view.required, 'token'],
            properties: { ...view.properties, token: { type: 'string' } },
          },
        }),
      },
    },
    async (request, reply) => {
      const now = clock.now();
      const body = request.body ?? {};
      const id = newId('etk');
      const token = newSecret('pet');
      const row: EnrollTokenTable = {
        id,
        name: body.name ?? id,
        hash: hashSecret(token),
        expires_at: now + (body.ttlSeconds ?? 3600) * 1000,
        max_uses: body.maxUses ?? 1,
        uses: 0,
        tags: JSON.stringify(body.tags ?? []),
        created_at: now,
        revoked_at: null,
      };
      await store.durable(async (tx) => {
        await tx.insertInto('enroll_tokens').values(row).execute();
        await audit(tx, now, {
          actor: actorOf(request.principal),
          action: 'enroll-token.create',
          target: id,
          details: { maxUses: row.max_uses, tags: body.tags ?? [] },
        });
      });
      return reply.code(201).send({ ...toView(row), token });
    },
  );

  app.get(
    '/enroll-tokens',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'List enrollment tokens',
        tags: ['enrollment'],
        security: security('operator'),
        response: withErrors({
          200: {
            type: 'object',
            required: ['enrollTokens'],
            properties: { enrollTokens: { type: 'array', items: view } },
          },
        }),
      },
    },
    async () => {
      const rows = await store.db.selectFrom('enroll_tokens').selectAll().orderBy('created_at').execute();
      return { enrollTokens: rows.map(toView) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/enroll-tokens/:id',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Revoke an enrollment token',
        tags: ['enrollment'],
        security: security('operator'),
        params: { type: 'object', required: ['id'], properties: { id: idParam } },
        response: withErrors({ 200: view }),
      },
    },
    async (request) => {
      const now = clock.now();
      return store.durable(async (tx) => {
        const found = await tx
          .selectFrom('enroll_tokens')
          .selectAll()
          .where('id', '=', request.params.id)
          .executeTakeFirst();
        if (!found) throw new PerchError('E_NOT_FOUND', `no enrollment token ${request.params.id}`);
        if (found.revoked_at !== null) return toView(found);
        await tx.updateTable('enroll_tokens').set({ revoked_at: now }).where('id', '=', found.id).execute();
        await audit(tx, now, {
          actor: actorOf(request.principal),
          action: 'enroll-token.revoke',
          target: found.id,
        });
        return toView({ ...found, revoked_at: now });
      });
    },
  );
};
