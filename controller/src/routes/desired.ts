import type { FastifyPluginAsync } from 'fastify';
import {
  desiredStateSchema,
  PerchError,
  topics,
  validate,
  type DesiredModel,
  type DesiredState,
} from '@perch/shared';
import type { AppDeps } from '../context';
import { actorOf } from '../auth/authenticate';
import { idParam, security, withErrors } from '../http/schemas';
import { audit } from '../audit';

interface DesiredBody {
  models: Array<{ name: string; version: string }>;
  pipelines: unknown[];
  config?: Record<string, unknown>;
}

const idParams = { type: 'object', required: ['id'], properties: { id: idParam } } as const;
const desiredView = {
  type: 'object',
  additionalProperties: true,
  required: ['v', 'rev', 'ts', 'models', 'pipelines'],
} as const;

/**
 * Desired state per device. The operator names models by name and version; the controller pins each
 * to its signed bundle target (path, sha256, length, security version) and publishes retained, QoS 1.
 */
export const desiredRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, clock, bus, settings, logger } = deps;

  app.put<{ Params: { id: string }; Body: DesiredBody }>(
    '/devices/:id/desired',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Set the desired state of a device (models and pipelines) and publish it',
        tags: ['devices'],
        security: security('operator'),
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['models', 'pipelines'],
          properties: {
            models: {
              type: 'array',
              maxItems: 32,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['name', 'version'],
                properties: { name: idParam, version: { type: 'string', minLength: 1, maxLength: 64 } },
              },
            },
            pipelines: { type: 'array', maxItems: 32, items: { type: 'object', additionalProperties: true } },
            config: { type: 'object', additionalProperties: true },
          },
        },
        response: withErrors({
          200: {
            type: 'object',
            required: ['desired', 'published'],
            properties: { desired: desiredView, published: { type: 'boolean' } },
          },
        }),
      },
    },
    async (request) => {
      const deviceId = request.params.id;
      const now = clock.now();
      const models: DesiredModel[] = [];
      for (const m of request.body.models) {
        const mv = await store.db
          .selectFrom('model_versions')
          .selectAll()
          .where('model', '=', m.name)
          .where('version', '=', m.version)
          .executeTakeFirst();
        if (!mv) throw new PerchError('E_NOT_FOUND', `no model version ${m.name}@${m.version}`);
        models.push({
          name: mv.model,
          version: mv.version,
          target: mv.target,
          sha256: mv.bundle_sha256,
          length: mv.bundle_length,
          securityVersion: mv.security_version,
        });
      }
      const doc = await store.durable(async (tx) => {
        const d = await tx
          .selectFrom('devices')
          .select(['id', 'revoked_at'])
          .where('id', '=', deviceId)
          .executeTakeFirst();
        if (!d || d.revoked_at !== null) throw new PerchError('E_NOT_FOUND', `no active device ${deviceId}`);
        const prev = await tx
          .selectFrom('desired')
          .select('rev')
          .where('device_id', '=', deviceId)
          .executeTakeFirst();
        const candidate = {
          v: 1,
          rev: (prev?.rev ?? 0) + 1,
          ts: now,
          models,
          pipelines: request.body.pipelines,
          ...(request.body.config ? { config: request.body.config } : {}),
        };
        const checked = validate(desiredStateSchema, candidate, 'desired state');
        if (!checked.ok) throw checked.error;
        const value: DesiredState = checked.value;
        const json = JSON.stringify(value);
        if (prev) {
          await tx
            .updateTable('desired')
            .set({ rev: value.rev, doc: json, updated_at: now })
            .where('device_id', '=', deviceId)
            .execute();
        } else {
          await tx
            .insertInto('desired')
            .values({ device_id: deviceId, rev: value.rev, doc: json, updated_at: now })
            .execute();
        }
        await audit(tx, now, {
          actor: actorOf(request.principal),
          action: 'device.desired',
          target: deviceId,
          details: { rev: value.rev },
        });
        return value;
      });
      let published = true;
      try {
        await bus.publishRetained(topics.desired(deviceId, settings.topicPrefix), JSON.stringify(doc));
      } catch (err) {
        // Stored is what counts: the broker adapter republishes desired state after it reconnects.
        published = false;
        logger.warn('desired state stored but not published', { deviceId, err: String(err) });
      }
      return { desired: doc, published };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/devices/:id/desired',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Get the desired state of a device',
        tags: ['devices'],
        security: security('viewer'),
        params: idParams,
        response: withErrors({ 200: desiredView }),
      },
    },
    async (request) => {
      const row = await store.db
        .selectFrom('desired')
        .select('doc')
        .where('device_id', '=', request.params.id)
        .executeTakeFirst();
      if (!row) throw new PerchError('E_NOT_FOUND', `no desired state for ${request.params.id}`);
      return JSON.parse(row.doc) as unknown;
    },
  );
};
