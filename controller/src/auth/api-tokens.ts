import type { Store } from '../db/open';
import { audit } from '../audit';
import { hashSecret, newId, newSecret } from './secrets';
import type { Role } from './roles';

export async function createApiToken(
  store: Store,
  now: number,
  name: string,
  role: Role,
  actor: string,
): Promise<{ id: string; token: string; createdAt: number }> {
  const id = newId('tok');
  const token = newSecret('pat');
  await store.durable(async (tx) => {
    await tx
      .insertInto('api_tokens')
      .values({
        id,
        name,
        role,
        hash: hashSecret(token),
        created_at: now,
        revoked_at: null,
        last_used_at: null,
      })
      .execute();
    await audit(tx, now, { actor, action: 'token.create', target: id, details: { name, role } });
  });
  return { id, token, createdAt: now };
}

/** True when no usable admin token exists (first start). */
export async function needsAdminToken(store: Store): Promise<boolean> {
  const row = await store.db
    .selectFrom('api_tokens')
    .select('id')
    .where('role', '=', 'admin')
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row === undefined;
}
