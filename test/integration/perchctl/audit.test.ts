import path from 'node:path';
import { ManualClock } from '@perch/shared';
import { perchctlRunner } from './run';
import { tempDir } from '../../helpers/tmp';
import { api, enroll, startHarness, type Harness } from '../controller/harness';

jest.setTimeout(60_000);

interface Entry {
  id: string;
  ts: number;
  actor: string;
  action: string;
  target: string;
  details: unknown;
}
interface Page {
  entries: Entry[];
  nextCursor: string | null;
}

let h: Harness;
let home: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
// Starts at the wall clock: enrollment proofs carry a real timestamp.
const clock = new ManualClock(Date.now());

const { ctl, json } = perchctlRunner(() => env);

async function audit(query: string, token = h.adminToken): Promise<{ status: number; body: Page }> {
  return api<Page>(h, 'GET', `/api/v1/audit${query}`, token);
}

beforeAll(async () => {
  h = await startHarness({ mode: 'embedded', clock });
  home = tempDir('perchctl-audit-');
  env = { PERCHCTL_CONFIG: path.join(home.dir, 'perchctl.json') };
  expect((await ctl('login', '--url', h.ctl.url, '--token', h.adminToken)).code).toBe(0);
});

afterAll(async () => {
  await h?.close();
  home?.cleanup();
});

describe('audit log', () => {
  it('records a revocation, found through the API and through perchctl audit ls', async () => {
    const device = await enroll(h);
    const enrolledAt = clock.now();
    await clock.advance(60_000);
    const revokedAt = clock.now();
    const revoke = await api(h, 'POST', `/api/v1/devices/${device.deviceId}/revoke`, h.adminToken);
    expect(revoke.status).toBe(200);

    const about = await audit(`?device=${device.deviceId}`);
    expect(about.status).toBe(200);
    expect(about.body.entries.map((e) => [e.action, e.target, e.ts])).toEqual([
      ['device.revoke', device.deviceId, revokedAt],
      ['device.enroll', device.deviceId, enrolledAt],
    ]);
    expect(about.body.entries[0]!.actor).toMatch(/^token:.+/);
    expect(about.body.entries[1]!.actor).toMatch(/^enroll-token:.+/);
    expect(about.body.nextCursor).toBeNull();

    const byTime = await audit(`?from=${revokedAt}&to=${revokedAt}`);
    expect(byTime.body.entries.map((e) => e.action)).toEqual(['device.revoke']);
    const byActor = await audit(
      `?actor=${encodeURIComponent(about.body.entries[0]!.actor)}&action=device.revoke`,
    );
    expect(byActor.body.entries.map((e) => e.target)).toEqual([device.deviceId]);

    const listed = await json<Page>('audit', 'ls', '--device', device.deviceId, '--action', 'device.revoke');
    expect(listed.entries).toEqual([about.body.entries[0]]);
    const since = await json<Page>('audit', 'ls', '--device', device.deviceId, '--since', String(revokedAt));
    expect(since.entries.map((e) => e.action)).toEqual(['device.revoke']);
    const table = await ctl('audit', 'ls', '--device', device.deviceId);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`device\\.revoke\\s+${device.deviceId}`));
    expect(table.stdout).toMatch(new RegExp(`device\\.enroll\\s+${device.deviceId}`));
  });

  it('pages newest first with a cursor, without gaps or repeats, also within one millisecond', async () => {
    for (let i = 0; i < 7; i++) {
      if (i % 3 === 0) await clock.advance(1000);
      const r = await api(h, 'POST', '/api/v1/tokens', h.adminToken, { name: `paged-${i}`, role: 'viewer' });
      expect(r.status).toBe(201);
    }
    const all = await audit('?action=token.create&limit=1000');
    expect(all.body.entries.length).toBeGreaterThanOrEqual(7);
    const ts = all.body.entries.map((e) => e.ts);
    expect(ts).toEqual([...ts].sort((a, b) => b - a));

    const walked: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: Page } = await audit(
        `?action=token.create&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      walked.push(...page.body.entries.map((e) => e.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor !== null);
    expect(walked).toEqual(all.body.entries.map((e) => e.id));
    expect(pages).toBe(Math.ceil(all.body.entries.length / 2));

    const newest = await json<Page>('audit', 'ls', '--action', 'token.create', '--limit', '3');
    expect(newest.entries.map((e) => e.id)).toEqual(walked.slice(0, 3));
  });

  it('is for admins only and refuses a malformed cursor', async () => {
    const op = await api<{ token: string }>(h, 'POST', '/api/v1/tokens', h.adminToken, {
      name: 'ops',
      role: 'operator',
    });
    expect((await audit('', op.body.token)).status).toBe(403);
    const bad = await audit('?cursor=not-a-cursor');
    expect(bad.status).toBe(400);
  });
});
