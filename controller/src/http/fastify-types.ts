import type { Access, Principal } from '../auth/roles';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** Who may call the route. Routes without it are refused (fail closed). */
    access?: Access | readonly Access[];
  }
}
