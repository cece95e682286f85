import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../context';
import { idParam, security, withErrors } from '../http/schemas';

interface AuditQuery {
  actor?: string;
  action?: string;
  target?: string;
  device?: string;
  from?: number;
  to?: number;
  limit?: number;
  cursor?: string;
}

/** `<ts>_<id>` of the last entry of a page; the next page starts strictly after it (newest first). */
const CURSOR = /^(\d{1,16})_([A-Za-z0-9-]{1,64})$/;

const entryView = {
  type: 'object',
  required: ['id', 'ts', 'actor', 'action', 'target', 'details'],
  properties: {
    id: { type: 'string' },
    ts: { type: 'integer', description: 'when it happened (ms since the epoch, controller clock)' },
    actor: {
      type: 'string',
      description: 'who: `token:<id>`, `device:<id>`, `enroll-token:<id>` or `system`-style names',
    },
    action: { type: 'string', description: 'what, e.g. `device.revoke`, `token.create`, `model.upload`' },
    target: { type: 'string', description: 'on what: a device, token, webhook id or `model@version`' },
    details: { description: 'action-specific JSON, or null' },
  },
} as const;

/** Read side of the audit log (controller/src/audit.ts writes it). Admin only: it names tokens and actions. */
export const auditRoutes: FastifyPluginAsync<AppDeps> = async (app, { store }) => {
  app.get<{ Querystring: AuditQuery }>(
    '/audit',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Audit log entries, newest first, filtered by actor, action, target or device and time',
        description:
          'Pages with `limit` and `cursor`: pass the `nextCursor` of a page to get the next (older) one; ' +
          '`nextCursor` is null on the last page. Entries older than `retention.auditDays` are deleted.',
        tags: ['audit'],
        security: security('admin'),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            actor: { type: 'string', minLength: 1, maxLength: 128 },
            action: { type: 'string', minLength: 1, maxLength: 64 },
            target: { type: 'string', minLength: 1, maxLength: 128 },
            device: { ...idParam, description: 'entries about this device (`device.*` actions on it)' },
            from: { type: 'integer', minimum: 0, description: 'at or after this time (ms)' },
            to: { type: 'integer', minimum: 0, description: 'at or before this time (ms)' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            cursor: { type: 'string', pattern: CURSOR.source, description: "a previous page's `nextCursor`" },
          },
        },
        response: withErrors({
          200: {
            type: 'object',
            required: ['entries', 'nextCursor'],
            properties: {
              entries: { type: 'array', items: entryView },
              nextCursor: { type: ['string', 'null'] },
            },
          },
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 100;
      let query = store.db.selectFrom('audit_log').selectAll();
      if (q.actor !== undefined) query = query.where('actor', '=', q.actor);
      if (q.action !== undefined) query = query.where('action', '=', q.action);
      if (q.target !== undefined) query = query.where('target', '=', q.target);
      if (q.device !== undefined)
        query = query.where('target', '=', q.device).where('action', 'like', 'device.%');
      if (q.from !== undefined) query = query.where('ts', '>=', q.from);
      if (q.to !== undefined) query = query.where('ts', '<=', q.to);
      const cursor = q.cursor === undefined ? undefined : CURSOR.exec(q.cursor);
      if (cursor) {
        const ts = Number(cursor[1]);
        const id = cursor[2]!;
        query = query.where((eb) =>
          eb.or([eb('ts', '<', ts), eb.and([eb('ts', '=', ts), eb('id', '<', id)])]),
        );
      }
      // One more than asked: tells whether there is a next page without a second query.
      const rows = await query
        .orderBy('ts', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .execute();
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        entries: page.map((r) => ({
          id: r.id,
          ts: Number(r.ts),
          actor: r.actor,
          action: r.action,
          target: r.target,
          details: r.details === null ? null : (JSON.parse(r.details) as unknown),
        })),
        nextCursor: rows.length > limit && last ? `${Number(last.ts)}_${last.id}` : null,
      };
    },
  );
};
