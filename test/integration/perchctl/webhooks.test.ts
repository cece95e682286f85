import http from 'node:http';
import path from 'node:path';
import { topics } from '@perch/shared';
import { perchctlRunner } from './run';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { connectDevice, enroll, startHarness, type Harness } from '../controller/harness';

jest.setTimeout(60_000);

let h: Harness;
let home: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
let status = 500;
const hits: string[] = [];
let server: http.Server;
let receiverUrl: string;

const { ctl, json } = perchctlRunner(() => env);

beforeAll(async () => {
  h = await startHarness({
    mode: 'embedded',
    config: { webhooks: { maxAttempts: 2, backoffBaseMs: 10, backoffMaxMs: 20 } },
  });
  home = tempDir('perchctl-wh-');
  env = { PERCHCTL_CONFIG: path.join(home.dir, 'perchctl.json') };
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push(Buffer.concat(chunks).toString());
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  expect((await ctl('login', '--url', h.ctl.url, '--token', h.adminToken)).code).toBe(0);
});

afterAll(async () => {
  await h?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  home?.cleanup();
});

describe('perchctl webhooks', () => {
  let webhookId = '';

  it('adds a webhook with filters and prints its secret once', async () => {
    const r = await ctl(
      'webhooks',
      'add',
      receiverUrl,
      '--label',
      'person',
      '--phase',
      'start',
      '--description',
      'ci',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/secret:\s+whsec_/);
    expect(r.stdout).toContain('labels=person phases=start');
    const list = await json<{ webhooks: Array<{ id: string; url: string }>; pending: number }>(
      'webhooks',
      'ls',
    );
    expect(list.webhooks.map((w) => w.url)).toEqual([receiverUrl]);
    webhookId = list.webhooks[0]?.id ?? '';
    const table = await ctl('webhooks', 'ls');
    expect(table.stdout).toContain(webhookId);
    expect(table.stdout).not.toContain('whsec_');
  });

  it('refuses a URL that is not http(s) as a usage error', async () => {
    const r = await ctl('webhooks', 'add', 'ftp://example.com/x');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('E_CLI_USAGE');
  });

  it('shows a failed delivery in dead-letters and redelivers it', async () => {
    const d = await enroll(h, undefined, { name: 'ctl-wh' });
    const c = await connectDevice(d);
    try {
      const ev = {
        v: 1,
        id: 'ctl-wh-0001',
        ts: Date.now(),
        eventId: 'ev-ctl-wh-0001',
        phase: 'start',
        pipeline: 'p1',
        label: 'person',
        score: 0.5,
      };
      await c.publishAsync(topics.events(d.deviceId), JSON.stringify(ev), { qos: 1 });
    } finally {
      c.end(true);
    }
    const letters = await waitFor(
      async () => {
        const r = await json<{ deadLetters: Array<{ id: string; attempts: number }> }>(
          'webhooks',
          'dead-letters',
        );
        return r.deadLetters.length > 0 && r.deadLetters;
      },
      { what: 'dead letter' },
    );
    expect(letters).toEqual([expect.objectContaining({ attempts: 2 })]);
    const table = await ctl('webhooks', 'dead-letters', webhookId);
    expect(table.stdout).toContain('ctl-wh-0001');
    expect(table.stdout).toContain('HTTP 500');
    status = 200;
    expect((await ctl('webhooks', 'dead-letters', '--redeliver', letters[0]?.id ?? '')).code).toBe(0);
    await waitFor(() => hits.length === 3, { what: 'redelivery' });
    await h.ctl.deps.webhooks.idle();
    expect((await json<{ deadLetters: unknown[] }>('webhooks', 'dead-letters')).deadLetters).toEqual([]);
  });

  it('removes a webhook', async () => {
    expect((await ctl('webhooks', 'rm', webhookId)).code).toBe(0);
    expect((await json<{ webhooks: unknown[] }>('webhooks', 'ls')).webhooks).toEqual([]);
    const again = await ctl('webhooks', 'rm', webhookId);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('E_WEBHOOK_NOT_FOUND');
  });
});
