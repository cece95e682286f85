import { api, enroll, startHarness, type Harness } from './harness';

type Operation = { security?: Array<Record<string, string[]>> };
type OpenApi = { openapi: string; paths: Record<string, Record<string, Operation>> };

const RANK = { viewer: 1, operator: 2, admin: 3 } as const;
type Role = keyof typeof RANK;

jest.setTimeout(60_000);

describe('OpenAPI walk: every route refuses a missing or too weak token', () => {
  let h: Harness;
  let doc: OpenApi;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    h = await startHarness();
    for (const role of ['viewer', 'operator'] as const) {
      const r = await api<{ token: string }>(h, 'POST', '/api/v1/tokens', h.adminToken, { name: role, role });
      tokens[role] = r.body.token;
    }
    tokens.admin = h.adminToken;
    tokens.device = (await enroll(h)).deviceToken;
    doc = (await api<OpenApi>(h, 'GET', '/api/v1/openapi.json', undefined)).body;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('documents the API as OpenAPI 3.1 with a security requirement on every operation', () => {
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.values(doc.paths).flatMap((p) => Object.values(p));
    expect(ops.length).toBeGreaterThan(20);
    for (const op of ops) expect(Array.isArray(op.security)).toBe(true);
  });

  it('refuses each protected operation without a token, with a bogus token, and with a weaker role', async () => {
    const checked: string[] = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      const url = template.replace(/\{[^}]+\}/g, 'abc1');
      for (const [method, op] of Object.entries(methods)) {
        const security = op.security ?? [];
        if (security.length === 0) continue; // public: enroll
        const m = method.toUpperCase() as 'GET' | 'POST' | 'PUT' | 'DELETE';
        const body = m === 'GET' || m === 'DELETE' ? undefined : {};
        const missing = await api(h, m, url, undefined, body);
        expect({ op: `${m} ${template}`, status: missing.status, body: missing.body }).toMatchObject({
          status: 401,
          body: { error: { code: 'E_AUTH_MISSING' } },
        });
        const bogus = await api(h, m, url, 'pat_not-a-real-token-at-all', body);
        expect({ op: `${m} ${template}`, status: bogus.status }).toEqual({
          op: `${m} ${template}`,
          status: 401,
        });

        const roles = security.flatMap((s) => s.bearer ?? []) as Role[];
        const deviceAllowed = security.some((s) => 'deviceToken' in s);
        const minRank = roles.length ? Math.min(...roles.map((r) => RANK[r])) : Infinity;
        const weaker = (Object.keys(RANK) as Role[]).filter((r) => RANK[r] < minRank);
        if (!deviceAllowed) weaker.push('device' as Role);
        for (const w of weaker) {
          const res = await api(h, m, url, tokens[w], body);
          expect({
            op: `${m} ${template}`,
            as: w,
            status: res.status,
            code: (res.body as { error?: { code: string } }).error?.code,
          }).toEqual({
            op: `${m} ${template}`,
            as: w,
            status: 403,
            code: 'E_AUTH_FORBIDDEN',
          });
        }
        checked.push(`${m} ${template}`);
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining(['POST /api/v1/tokens', 'PUT /api/v1/devices/{id}/desired', 'GET /metrics']),
    );
  });

  it('keeps the enrollment route public and stack traces out of every error body', async () => {
    const res = await api<string>(h, 'POST', '/api/v1/enroll', undefined, '{"token": ');
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/);
  });
});
