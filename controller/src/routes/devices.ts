import type { FastifyPluginAsync } from 'fastify';
import { PerchError, topics, type ReportedState } from '@perch/shared';
import type { AppDeps } from '../context';
import { actorOf } from '../auth/authenticate';
import { idParam, security, tagSchema, withErrors } from '../http/schemas';
import { homeAssistantDiscoveryTopic } from '../broker/dynsec-acl';
import { audit } from '../audit';
import type { DeviceTable } from '../db/schema';

const deviceView = {
  type: 'object',
  required: ['id', 'tags', 'online', 'enrolledAt'],
  properties: {
    id: { type: 'string' },
    hostname: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    online: { type: 'boolean' },
    lastSeenAt: { type: ['integer', 'null'] },
    enrolledAt: { type: 'integer' },
    revokedAt: { type: ['integer', 'null'] },
  },
} as const;

const activeModelsSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: { name: { type: 'string' }, version: { type: 'string' }, sha256: { type: 'string' } },
  },
} as const;

const detailView = {
  ...deviceView,
  properties: {
    ...deviceView.properties,
    reported: { type: ['object', 'null'], additionalProperties: true },
    reportedAt: { type: ['integer', 'null'] },
    desired: { type: ['object', 'null'], additionalProperties: true },
    activeModels: activeModelsSchema,
  },
} as const;

/** A list row: the device and the models its last report says are active. */
const listView = {
  ...deviceView,
  properties: { ...deviceView.properties, activeModels: activeModelsSchema },
} as const;

function activeModels(reported: ReportedState | null) {
  return (reported?.models ?? [])
    .filter((m) => m.state === 'active')
    .map((m) => ({ name: m.name, version: m.version, sha256: m.sha256 }));
}

function view(d: DeviceTable, tags: string[]) {
  return {
    id: d.id,
    hostname: d.hostname,
    tags,
    online: d.online === 1,
    lastSeenAt: d.last_seen_at,
    enrolledAt: d.enrolled_at,
    revokedAt: d.revoked_at,
  };
}

const idParams = { type: 'object', required: ['id'], properties: { id: idParam } } as const;

export const deviceRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, clock } = deps;

  async function tagsOf(ids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    const rows = await store.db
      .selectFrom('device_tags')
      .selectAll()
      .where('device_id', 'in', ids)
      .orderBy('tag')
      .execute();
    for (const r of rows) out.get(r.device_id)?.push(r.tag);
    return out;
  }

  async function load(id: string): Promise<DeviceTable> {
    const d = await store.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    if (!d) throw new PerchError('E_NOT_FOUND', `no device ${id}`);
    return d;
  }

  app.get<{ Querystring: { tag?: string; online?: boolean; revoked?: boolean; limit?: number } }>(
    '/devices',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'List devices',
        tags: ['devices'],
        security: security('viewer'),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            tag: tagSchema,
            online: { type: 'boolean' },
            revoked: { type: 'boolean', default: false },
            limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
          },
        },
        response: withErrors({
          200: {
            type: 'object',
            required: ['devices'],
            properties: { devices: { type: 'array', items: listView } },
          },
        }),
      },
    },
    async (request) => {
      const q = request.query;
      let query = store.db.selectFrom('devices').selectAll('devices');
      if (q.tag !== undefined) {
        const tag = q.tag;
        query = query.where((eb) =>
          eb.exists(
            eb
              .selectFrom('device_tags')
              .select('device_tags.tag')
              .whereRef('device_tags.device_id', '=', 'devices.id')
              .where('device_tags.tag', '=', tag),
          ),
        );
      }
      if (q.online !== undefined) query = query.where('online', '=', q.online ? 1 : 0);
      query = q.revoked ? query.where('revoked_at', 'is not', null) : query.where('revoked_at', 'is', null);
      const rows = await query
        .orderBy('id')
        .limit(q.limit ?? 1000)
        .execute();
      const tags = await tagsOf(rows.map((r) => r.id));
      return {
        devices: rows.map((r) => ({
          ...view(r, tags.get(r.id) ?? []),
          activeModels: activeModels(r.reported === null ? null : (JSON.parse(r.reported) as ReportedState)),
        })),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/devices/:id',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Get a device',
        tags: ['devices'],
        security: security('viewer'),
        params: idParams,
        response: withErrors({ 200: detailView }),
      },
    },
    async (request) => {
      const d = await load(request.params.id);
      const tags = await tagsOf([d.id]);
      const desired = await store.db
        .selectFrom('desired')
        .select('doc')
        .where('device_id', '=', d.id)
        .executeTakeFirst();
      const reported = d.reported === null ? null : (JSON.parse(d.reported) as ReportedState);
      return {
        ...view(d, tags.get(d.id) ?? []),
        reported,
        reportedAt: d.reported_at,
        desired: desired ? (JSON.parse(desired.doc) as unknown) : null,
        activeModels: activeModels(reported),
      };
    },
  );

  app.put<{ Params: { id: string }; Body: { tags: string[] } }>(
    '/devices/:id/tags',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Replace the tags of a device',
        tags: ['devices'],
        security: security('operator'),
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['tags'],
          properties: { tags: { type: 'array', items: tagSchema, maxItems: 32, uniqueItems: true } },
        },
        response: withErrors({ 200: deviceView }),
      },
    },
    async (request) => {
      const now = clock.now();
      const id = request.params.id;
      await store.transaction(async (tx) => {
        const d = await tx.selectFrom('devices').select('id').where('id', '=', id).executeTakeFirst();
        if (!d) throw new PerchError('E_NOT_FOUND', `no device ${id}`);
        await tx.deleteFrom('device_tags').where('device_id', '=', id).execute();
        if (request.body.tags.length > 0) {
          await tx
            .insertInto('device_tags')
            .values(request.body.tags.map((tag) => ({ device_id: id, tag })))
            .execute();
        }
        await audit(tx, now, {
          actor: actorOf(request.principal),
          action: 'device.tags',
          target: id,
          details: { tags: request.body.tags },
        });
      });
      const d = await load(id);
      return view(d, [...request.body.tags].sort());
    },
  );

  app.post<{ Params: { id: string } }>(
    '/devices/:id/revoke',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'Revoke a device: kicks its MQTT session, refuses its API calls and downloads',
        tags: ['devices'],
        security: security('operator'),
        params: idParams,
        response: withErrors({ 200: deviceView }),
      },
    },
    async (request) => {
      const d = await revokeDevice(deps, request.params.id, actorOf(request.principal));
      const tags = await tagsOf([d.id]);
      return view(d, tags.get(d.id) ?? []);
    },
  );

  app.get(
    '/device/self',
    {
      config: { access: 'device' },
      schema: {
        summary: 'The calling device: its id and current desired state',
        tags: ['device'],
        security: security('device'),
        response: withErrors({
          200: {
            type: 'object',
            required: ['deviceId'],
            properties: {
              deviceId: { type: 'string' },
              desired: { type: ['object', 'null'], additionalProperties: true },
            },
          },
        }),
      },
    },
    async (request) => {
      const principal = request.principal;
      if (principal?.kind !== 'device') throw new PerchError('E_AUTH_FORBIDDEN', 'devices only');
      const desired = await store.db
        .selectFrom('desired')
        .select('doc')
        .where('device_id', '=', principal.deviceId)
        .executeTakeFirst();
      return { deviceId: principal.deviceId, desired: desired ? (JSON.parse(desired.doc) as unknown) : null };
    },
  );
};

/** Revocation: durable DB change and audit first (API and downloads refused at once), then the broker kick. */
export async function revokeDevice(deps: AppDeps, id: string, actor: string): Promise<DeviceTable> {
  const now = deps.clock.now();
  const row = await deps.store.durable(async (tx) => {
    const d = await tx.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    if (!d) throw new PerchError('E_NOT_FOUND', `no device ${id}`);
    if (d.revoked_at !== null) return d;
    await tx.updateTable('devices').set({ revoked_at: now, online: 0 }).where('id', '=', id).execute();
    await audit(tx, now, { actor, action: 'device.revoke', target: id });
    return { ...d, revoked_at: now, online: 0 };
  });
  await deps.bus.removeDevice(id);
  try {
    // An empty retained payload clears the desired state the device could otherwise still read.
    await deps.bus.publishRetained(topics.desired(id, deps.settings.topicPrefix), '');
  } catch (err) {
    deps.logger.warn('could not clear retained desired state of a revoked device', {
      deviceId: id,
      err: String(err),
    });
  }
  try {
    // An empty retained payload on the discovery topic makes Home Assistant remove the device.
    await deps.bus.publishRetained(homeAssistantDiscoveryTopic(id, deps.settings.homeAssistantPrefix), '');
  } catch (err) {
    deps.logger.warn('could not remove the Home Assistant discovery of a revoked device', {
      deviceId: id,
      err: String(err),
    });
  }
  return row;
}
