import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../context';
import { security } from '../http/schemas';

/** Prometheus scrape endpoint. Viewer tokens may scrape; the body is the text exposition format. */
export const metricsRoutes: FastifyPluginAsync<AppDeps> = async (app, { metrics, store }) => {
  app.get(
    '/metrics',
    {
      config: { access: 'viewer' },
      schema: { summary: 'Prometheus metrics', tags: ['metrics'], security: security('viewer') },
    },
    async (_request, reply) => {
      const row = await store.db
        .selectFrom('devices')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('online', '=', 1)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      metrics.devicesOnline.set(Number(row?.n ?? 0));
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
};
