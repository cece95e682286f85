import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../context';
import { idParam, security, withErrors } from '../http/schemas';

const MAX_POINTS = 100_000;

interface TelemetryQuery {
  device: string;
  metric: string;
  from?: number;
  to?: number;
  stepMs?: number;
}

interface EventQuery {
  device?: string;
  label?: string;
  pipeline?: string;
  phase?: string;
  from?: number;
  to?: number;
  limit?: number;
}

/** Read side of the ingest: telemetry series (downsampled in buckets) and event queries. */
export const telemetryRoutes: FastifyPluginAsync<AppDeps> = async (app, { store, clock }) => {
  app.get<{ Querystring: TelemetryQuery }>(
    '/telemetry',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'A metric of a device over a time range, downsampled into buckets of stepMs',
        tags: ['telemetry'],
        security: security('viewer'),
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['device', 'metric'],
          properties: {
            device: idParam,
            metric: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,127}$' },
            from: { type: 'integer', minimum: 0 },
            to: { type: 'integer', minimum: 0 },
            stepMs: { type: 'integer', minimum: 1, maximum: 86_400_000 },
          },
        },
        response: withErrors({
          200: {
            type: 'object',
            required: ['device', 'metric', 'points'],
            properties: {
              device: { type: 'string' },
              metric: { type: 'string' },
              stepMs: { type: ['integer', 'null'] },
              points: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['ts', 'avg', 'min', 'max', 'count'],
                  properties: {
                    ts: { type: 'integer' },
                    avg: { type: 'number' },
                    min: { type: 'number' },
                    max: { type: 'number' },
                    count: { type: 'integer' },
                  },
                },
              },
            },
          },
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const to = q.to ?? clock.now();
      const from = q.from ?? to - 3600_000;
      const raw = await store.db
        .selectFrom('telemetry')
        .select(['ts', 'metrics'])
        .where('device_id', '=', q.device)
        .where('ts', '>=', from)
        .where('ts', '<=', to)
        .orderBy('ts')
        .limit(MAX_POINTS)
        .execute();
      const rows: Array<{ ts: number; value: number }> = [];
      for (const r of raw) {
        const value = (JSON.parse(r.metrics) as Record<string, unknown>)[q.metric];
        if (typeof value === 'number') rows.push({ ts: Number(r.ts), value });
      }
      const step = q.stepMs;
      if (step === undefined) {
        return {
          device: q.device,
          metric: q.metric,
          stepMs: null,
          points: rows.map((r) => ({ ts: Number(r.ts), avg: r.value, min: r.value, max: r.value, count: 1 })),
        };
      }
      const buckets = new Map<number, { sum: number; min: number; max: number; count: number }>();
      for (const r of rows) {
        const b = Math.floor(Number(r.ts) / step) * step;
        const cur = buckets.get(b);
        if (!cur) buckets.set(b, { sum: r.value, min: r.value, max: r.value, count: 1 });
        else {
          cur.sum += r.value;
          cur.min = Math.min(cur.min, r.value);
          cur.max = Math.max(cur.max, r.value);
          cur.count++;
        }
      }
      const points = [...buckets.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([ts, v]) => ({ ts, avg: v.sum / v.count, min: v.min, max: v.max, count: v.count }));
      return { device: q.device, metric: q.metric, stepMs: step, points };
    },
  );

  app.get<{ Querystring: EventQuery }>(
    '/events',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Detection events, newest first, filtered by device, label, pipeline, phase and time',
        tags: ['telemetry'],
        security: security('viewer'),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            device: idParam,
            label: { type: 'string', minLength: 1, maxLength: 128 },
            pipeline: idParam,
            phase: { type: 'string', enum: ['start', 'update', 'end'] },
            from: { type: 'integer', minimum: 0 },
            to: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: withErrors({
          200: {
            type: 'object',
            required: ['events'],
            properties: { events: { type: 'array', items: { type: 'object', additionalProperties: true } } },
          },
        }),
      },
    },
    async (request) => {
      const q = request.query;
      let query = store.db.selectFrom('events').select(['device_id', 'body']);
      if (q.device !== undefined) query = query.where('device_id', '=', q.device);
      if (q.label !== undefined) query = query.where('label', '=', q.label);
      if (q.pipeline !== undefined) query = query.where('pipeline', '=', q.pipeline);
      if (q.phase !== undefined) query = query.where('phase', '=', q.phase);
      if (q.from !== undefined) query = query.where('ts', '>=', q.from);
      if (q.to !== undefined) query = query.where('ts', '<=', q.to);
      const rows = await query
        .orderBy('ts', 'desc')
        .limit(q.limit ?? 100)
        .execute();
      return { events: rows.map((r) => ({ device: r.device_id, ...(JSON.parse(r.body) as object) })) };
    },
  );
};
