import { PerchError } from '@perch/shared';
import type { Store } from '../db/open';
import { hashSecret } from './secrets';
import { isRole, roleAtLeast, type Access, type Principal } from './roles';

/** Reads `Authorization: Bearer <secret>`; anything else is treated as missing. */
export function bearer(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer\s+([A-Za-z0-9_-]{8,200})\s*$/.exec(header);
  return m?.[1];
}

/** Resolves a bearer secret to a principal, or throws E_AUTH_* / E_DEVICE_REVOKED. */
export async function resolvePrincipal(
  store: Store,
  header: string | undefined,
  now?: number,
): Promise<Principal> {
  const raw = typeof header === 'string' ? header : undefined;
  if (raw === undefined || raw.trim() === '') throw new PerchError('E_AUTH_MISSING', 'no bearer token');
  const secret = bearer(raw);
  if (secret === undefined) throw new PerchError('E_AUTH_INVALID', 'malformed Authorization header');
  const hash = hashSecret(secret);
  if (secret.startsWith('pdt_')) {
    const device = await store.db
      .selectFrom('devices')
      .select(['id', 'revoked_at'])
      .where('device_token_hash', '=', hash)
      .executeTakeFirst();
    if (!device) throw new PerchError('E_AUTH_INVALID', 'unknown token');
    if (device.revoked_at !== null) throw new PerchError('E_DEVICE_REVOKED', 'device is revoked');
    return { kind: 'device', deviceId: device.id };
  }
  const token = await store.db
    .selectFrom('api_tokens')
    .select(['id', 'name', 'role', 'revoked_at', 'last_used_at'])
    .where('hash', '=', hash)
    .executeTakeFirst();
  if (!token || token.revoked_at !== null || !isRole(token.role)) {
    throw new PerchError('E_AUTH_INVALID', 'unknown or revoked token');
  }
  // At most one write a minute per token: enough to tell a token in use from a forgotten one.
  if (now !== undefined && (token.last_used_at === null || now - token.last_used_at > 60_000)) {
    await store.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', token.id).execute();
  }
  return { kind: 'operator', tokenId: token.id, name: token.name, role: token.role };
}

export function authorize(principal: Principal, access: Access): void {
  if (access === 'public') return;
  if (access === 'device') {
    if (principal.kind !== 'device') throw new PerchError('E_AUTH_FORBIDDEN', 'this route is for devices');
    return;
  }
  if (principal.kind !== 'operator' || !roleAtLeast(principal.role, access)) {
    throw new PerchError('E_AUTH_FORBIDDEN', `this route needs the ${access} role`);
  }
}

export function actorOf(principal: Principal | undefined): string {
  if (!principal) return 'anonymous';
  return principal.kind === 'device' ? `device:${principal.deviceId}` : `token:${principal.tokenId}`;
}
