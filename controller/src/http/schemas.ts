import type { Access } from '../auth/roles';

/** JSON schemas shared by the route plugins. */
export const errorResponse = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
    },
  },
} as const;

export const idParam = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' } as const;
export const tagSchema = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' } as const;

/** Standard error responses added to every route so the OpenAPI document lists them. */
export function withErrors<T extends Record<string, unknown>>(responses: T): T & Record<string, unknown> {
  return { ...responses, '4xx': errorResponse, '5xx': errorResponse };
}

/** Security requirement for the OpenAPI document: the role names go in the scopes (OpenAPI 3.1). */
export function security(access: Access | readonly Access[]): Array<Record<string, string[]>> {
  const list: readonly Access[] = Array.isArray(access) ? access : [access as Access];
  const out: Array<Record<string, string[]>> = [];
  for (const a of list) {
    if (a === 'public') return [];
    if (a === 'device') out.push({ deviceToken: [] });
    else out.push({ bearer: [a] });
  }
  return out;
}
