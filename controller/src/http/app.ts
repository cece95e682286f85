import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { PerchError, childLogger } from '@perch/shared';
import './fastify-types';
import type { AppDeps } from '../context';
import { authorize, resolvePrincipal } from '../auth/authenticate';
import type { Access } from '../auth/roles';
import { installErrorHandling } from './errors';
import { tokenRoutes } from '../routes/tokens';
import { enrollTokenRoutes } from '../routes/enroll-tokens';
import { enrollRoutes } from '../routes/enroll';
import { deviceRoutes } from '../routes/devices';
import { desiredRoutes } from '../routes/desired';
import { modelRoutes } from '../routes/models';
import { telemetryRoutes } from '../routes/telemetry';
import { tufRoutes } from '../routes/tuf';
import { metricsRoutes } from '../routes/metrics';
import { webhookRoutes } from '../routes/webhooks';
import { auditRoutes } from '../routes/audit';

/**
 * The HTTP app factory: one instance per controller (or per test), every dependency passed in.
 * `server.ts` only calls `listen` on what this returns.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const log = childLogger(deps.logger, 'http');
  const app = Fastify({
    logger: false,
    bodyLimit: deps.settings.bodyLimitBytes,
    // Keep fastify's own protections on: prototype keys in JSON are errors.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });

  installErrorHandling(app, deps.metrics, log);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Perch controller API', version: '1' },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'operator token; scopes list the minimum role',
          },
          deviceToken: { type: 'http', scheme: 'bearer', description: 'device token from enrollment' },
        },
      },
    },
  });

  // Fail closed: a route must declare its access, and the check runs before the body is read.
  app.addHook('onRequest', async (request) => {
    request.logger = log.child({ reqId: request.id });
    const access = request.routeOptions.config.access;
    if (request.routeOptions.url === undefined) return; // 404 handler
    if (access === undefined) throw new PerchError('E_AUTH_FORBIDDEN', 'route has no access rule');
    const accepted: readonly Access[] = Array.isArray(access) ? access : [access as Access];
    if (accepted.includes('public')) return;
    const principal = await resolvePrincipal(deps.store, request.headers.authorization, deps.clock.now());
    let lastError: unknown;
    for (const a of accepted) {
      try {
        authorize(principal, a);
        request.principal = principal;
        return;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError ?? new PerchError('E_AUTH_FORBIDDEN', 'forbidden');
  });

  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.httpLatency.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });

  app.get('/api/v1/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () =>
    app.swagger(),
  );

  await app.register(
    async (api) => {
      await api.register(tokenRoutes, deps);
      await api.register(enrollTokenRoutes, deps);
      await api.register(enrollRoutes, deps);
      await api.register(deviceRoutes, deps);
      await api.register(desiredRoutes, deps);
      await api.register(modelRoutes, deps);
      await api.register(telemetryRoutes, deps);
      await api.register(webhookRoutes, deps);
      await api.register(auditRoutes, deps);
    },
    { prefix: '/api/v1' },
  );
  await app.register(tufRoutes, { ...deps, prefix: '/tuf' });
  await app.register(metricsRoutes, deps);

  return app;
}
