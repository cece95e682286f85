import {
  api,
  connectDevice,
  createEnrollToken,
  deviceKeys,
  enroll,
  enrollBody,
  startHarness,
  telemetry,
  waitClosed,
  type Harness,
} from './harness';
import { waitFor } from '../../helpers/wait';
import { topics } from '@perch/shared';

jest.setTimeout(60_000);

describe.each(['embedded', 'mosquitto'] as const)('enrollment and revocation (%s broker)', (mode) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ mode });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('enrolls a device that then connects, publishes telemetry, and receives retained desired state', async () => {
    const d = await enroll(h, undefined, { name: `cam-${mode}` });
    expect(d.deviceId).toBe(`cam-${mode}`);
    expect(d.mqtt.username).toBe(d.deviceId);
    expect(d.tufRoot).toHaveProperty('signed._type', 'root');
    const client = await connectDevice(d);
    try {
      client.publish(topics.telemetry(d.deviceId), telemetry({ 'system.cpu_percent': 42 }), { qos: 1 });
      await waitFor(
        async () => {
          const r = await api<{ points: unknown[] }>(
            h,
            'GET',
            `/api/v1/telemetry?device=${d.deviceId}&metric=system.cpu_percent&from=0`,
            h.adminToken,
          );
          return r.body.points.length === 1;
        },
        { what: 'stored telemetry' },
      );
      const put = await api<{ published: boolean }>(
        h,
        'PUT',
        `/api/v1/devices/${d.deviceId}/desired`,
        h.adminToken,
        { models: [], pipelines: [] },
      );
      expect(put.status).toBe(200);
      expect(put.body.published).toBe(true);
      const got = new Promise<string>((resolve) => client.on('message', (_t, p) => resolve(p.toString())));
      await client.subscribeAsync(topics.desired(d.deviceId), { qos: 1 });
      expect(JSON.parse(await got)).toMatchObject({ v: 1, rev: 1, models: [], pipelines: [] });
    } finally {
      await client.endAsync();
    }
  });

  it('refuses a reused single-use token with E_ENROLL_TOKEN_EXHAUSTED', async () => {
    const token = await createEnrollToken(h);
    await enroll(h, token);
    const res = await api(h, 'POST', '/api/v1/enroll', undefined, enrollBody(token));
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: { code: 'E_ENROLL_TOKEN_EXHAUSTED' } });
  });

  it('refuses an expired token with E_ENROLL_TOKEN_EXPIRED', async () => {
    const res0 = await api<{ token: string; id: string }>(h, 'POST', '/api/v1/enroll-tokens', h.adminToken, {
      ttlSeconds: 1,
    });
    // Expire it in the store rather than sleeping.
    await h.ctl.deps.store.db
      .updateTable('enroll_tokens')
      .set({ expires_at: 1 })
      .where('id', '=', res0.body.id)
      .execute();
    const res = await api(h, 'POST', '/api/v1/enroll', undefined, enrollBody(res0.body.token));
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: { code: 'E_ENROLL_TOKEN_EXPIRED' } });
  });

  it('refuses forged proofs (wrong key, stale timestamp, unknown token) and keeps the token usable', async () => {
    const token = await createEnrollToken(h);
    const keys = deviceKeys();
    const other = deviceKeys();
    const forged = await api(
      h,
      'POST',
      '/api/v1/enroll',
      undefined,
      enrollBody(token, keys, {}, other.privateKey),
    );
    expect(forged.body).toMatchObject({ error: { code: 'E_ENROLL_PROOF_INVALID' } });
    const stale = await api(
      h,
      'POST',
      '/api/v1/enroll',
      undefined,
      enrollBody(token, keys, { timestamp: new Date(Date.now() - 3600_000).toISOString() }),
    );
    expect(stale.body).toMatchObject({ error: { code: 'E_ENROLL_PROOF_INVALID' } });
    const unknown = await api(
      h,
      'POST',
      '/api/v1/enroll',
      undefined,
      enrollBody('pet_thisisnotatoken', keys),
    );
    expect(unknown.body).toMatchObject({ error: { code: 'E_ENROLL_TOKEN_INVALID' } });
    const rsa = await api(h, 'POST', '/api/v1/enroll', undefined, {
      ...enrollBody(token, keys),
      publicKey: 'bm90IGEga2V5IGF0IGFsbCwganVzdCB0ZXh0IGxvbmcgZW5vdWdo',
    });
    expect(rsa.body).toMatchObject({ error: { code: 'E_ENROLL_KEY_INVALID' } });
    const good = await api(h, 'POST', '/api/v1/enroll', undefined, enrollBody(token, keys));
    expect(good.status).toBe(201);
    const reuse = await api(
      h,
      'POST',
      '/api/v1/enroll',
      undefined,
      enrollBody(await createEnrollToken(h), keys),
    );
    expect(reuse.body).toMatchObject({ error: { code: 'E_ENROLL_KEY_REUSED' } });
  });

  it('lets exactly one of many devices racing for a single-use token win', async () => {
    const token = await createEnrollToken(h);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => api(h, 'POST', '/api/v1/enroll', undefined, enrollBody(token))),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(
      results
        .filter((r) => r.status !== 201)
        .every((r) => (r.body as { error: { code: string } }).error.code === 'E_ENROLL_TOKEN_EXHAUSTED'),
    ).toBe(true);
  });

  it('revoking a device kicks its live session, refuses reconnects, API calls and downloads, and audits it', async () => {
    const d = await enroll(h);
    const client = await connectDevice(d);
    const self = await api(h, 'GET', '/api/v1/device/self', d.deviceToken);
    expect(self.status).toBe(200);
    const closed = waitClosed(client);
    const rev = await api(h, 'POST', `/api/v1/devices/${d.deviceId}/revoke`, h.adminToken);
    expect(rev.status).toBe(200);
    await closed;
    client.end(true);
    await expect(connectDevice(d)).rejects.toThrow();
    const after = await api(h, 'GET', '/api/v1/device/self', d.deviceToken);
    expect(after.status).toBe(401);
    expect(after.body).toMatchObject({ error: { code: 'E_DEVICE_REVOKED' } });
    const tuf = await api(h, 'GET', '/tuf/metadata/timestamp.json', d.deviceToken);
    expect(tuf.body).toMatchObject({ error: { code: 'E_DEVICE_REVOKED' } });
    const audit = await h.ctl.deps.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'device.revoke')
      .where('target', '=', d.deviceId)
      .execute();
    expect(audit).toHaveLength(1);
  });

  it('gives a device its retained desired state again after a controller restart', async () => {
    const d = await enroll(h);
    const put = await api(h, 'PUT', `/api/v1/devices/${d.deviceId}/desired`, h.adminToken, {
      models: [],
      pipelines: [],
      config: { telemetryIntervalS: 7 },
    });
    expect(put.status).toBe(200);
    await h.restart();
    const url = mode === 'embedded' ? `mqtt://127.0.0.1:${h.ctl.mqttPort}` : d.mqtt.url;
    const client = await connectDevice(d, { url });
    try {
      const got = new Promise<string>((resolve) => client.on('message', (_t, p) => resolve(p.toString())));
      await client.subscribeAsync(topics.desired(d.deviceId), { qos: 1 });
      expect(JSON.parse(await got)).toMatchObject({ rev: 1, config: { telemetryIntervalS: 7 } });
    } finally {
      await client.endAsync();
    }
  });
});
