export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const rank: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function roleAtLeast(have: Role, need: Role): boolean {
  return rank[have] >= rank[need];
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Who made a request: an operator token with a role, or an enrolled device. */
export type Principal =
  { kind: 'operator'; tokenId: string; name: string; role: Role } | { kind: 'device'; deviceId: string };

/** What a route accepts: an operator role (and anything stronger), `device`, or `public`. */
export type Access = Role | 'device' | 'public';
