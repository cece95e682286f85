import type { Logger } from '@perch/shared';
import type { Access, Principal } from '../auth/roles';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** Request-scoped logger (namespace controller:http, with the request id). */
    logger?: Logger;
  }
  interface FastifyContextConfig {
    /** Who may call the route. Routes without it are refused (fail closed). */
    access?: Access | readonly Access[];
  }
}
