import type { FastifyPluginAsync } from 'fastify';
import { PerchError } from '@perch/shared';
import type { AppDeps } from '../context';
import { actorOf } from '../auth/authenticate';
import { ROLES, type Role } from '../auth/roles';
import { createApiToken } from '../auth/api-tokens';
import { idParam, security, withErrors } from '../http/schemas';
import { audit } from '../audit';

const tokenView = {
  type: 'object',
  required: ['id', 'name', 'role', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: [...ROLES] },
    createdAt: { type: 'integer' },
    revokedAt: { type: ['integer', 'null'] },
    lastUsedAt: { type: ['integer', 'null'] },
  },
} as const;

/** Operator API tokens: admin only. The secret is returned once, at creation. */
export const tokenRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, clock } = deps;

  app.post<{ Body: { name: string; role: Role } }>(
    '/tokens',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create an operator token',
        tags: ['tokens'],
        security: security('admin'),
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'role'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 128 },
            role: { type: 'string', enum: [...ROLES] },
          },
        },
        response: withErrors({
          201: {
            ...tokenView,
            required: [...tokenView.required, 'token'],
            properties: { ...tokenView.properties, token: { type: 'string' } },
          },
        }),
      },
    },
    async (request, reply) => {
      const created = await createApiToken(
        store,
        clock.now(),
        request.body.name,
        request.body.role,
        actorOf(request.principal),
      );
      return reply.code(201).send({
        id: created.id,
        name: request.body.name,
        role: request.body.role,
        createdAt: created.createdAt,
        token: created.token,
      });
    },
  );

  app.get(
    '/tokens',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List operator tokens',
        tags: ['tokens'],
        security: security('admin'),
        response: withErrors({
          200: {
            type: 'object',
            required: ['tokens'],
            properties: { tokens: { type: 'array', items: tokenView } },
          },
        }),
      },
    },
    async () => {
      const rows = await store.db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute();
      return {
        tokens: rows.map((r) => ({
          id: r.id,
          name: r.name,
          role: r.role,
          createdAt: r.created_at,
          revokedAt: r.revoked_at,
          lastUsedAt: r.last_used_at,
        })),
      };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Revoke an operator token',
        tags: ['tokens'],
        security: security('admin'),
        params: { type: 'object', required: ['id'], properties: { id: idParam } },
        response: withErrors({ 200: tokenView }),
      },
    },
    async (request) => {
      const now = clock.now();
      const row = await store.durable(async (tx) => {
        const found = await tx
          .selectFrom('api_tokens')
          .selectAll()
          .where('id', '=', request.params.id)
          .executeTakeFirst();
        if (!found) throw new PerchError('E_NOT_FOUND', `no token ${request.params.id}`);
        if (found.revoked_at === null) {
          await tx.updateTable('api_tokens').set({ revoked_at: now }).where('id', '=', found.id).execute();
          await audit(tx, now, {
            actor: actorOf(request.principal),
            action: 'token.revoke',
            target: found.id,
          });
        }
        return { ...found, revoked_at: found.revoked_at ?? now };
      });
      return {
        id: row.id,
        name: row.name,
        role: row.role,
        createdAt: row.created_at,
        revokedAt: row.revoked_at,
        lastUsedAt: row.last_used_at,
      };
    },
  );
};
