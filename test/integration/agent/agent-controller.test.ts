import fs from 'node:fs';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import {
  api,
  BLAZEFACE_SPEC,
  createEnrollToken,
  silentLogger,
  startHarness,
  uploadBundle,
  type Harness,
} from '../controller/harness';

jest.setTimeout(120_000);

describe('agent against the real controller', () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    h = await startHarness();
    tmp = tempDir('perch-agent-it-');
    const up = await uploadBundle(h, 'blazeface', '1', {
      model: fs.readFileSync(fixturePath('blazeface.onnx')),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
    });
    expect(up.status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    tmp?.cleanup();
  });

  const config = (token?: string) =>
    agentConfigSchema.parse({
      stateDir: tmp.dir,
      controllerUrl: h.ctl.url,
      ...(token ? { enrollToken: token } : {}),
      telemetry: { intervalS: 3600 },
      update: { warmupRuns: 1, trialRuns: 2 },
      mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
    });

  it('enrolls, installs the BlazeFace bundle from desired state, reports it active, and restarts without re-enrolling', async () => {
    const agent = new Agent(config(await createEnrollToken(h)), { logger: silentLogger, env: {} });
    await agent.start();
    const deviceId = agent.credentials!.deviceId;
    expect(fs.statSync(agent.paths.identityKey).mode & 0o777).toBe(0o600);
    await waitFor(() => agent.session?.connected, { what: 'mqtt connect' });
    const put = await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
      models: [{ name: 'blazeface', version: '1' }],
      pipelines: [],
    });
    expect(put.status).toBe(200);
    await waitFor(
      () => agent.reconciler?.reportedModels().find((m) => m.name === 'blazeface' && m.state === 'active'),
      { what: 'blazeface active', timeoutMs: 60_000 },
    );
    await waitFor(() => agent.reconciler?.isSettled(), { what: 'settled' });
    expect(agent.reportedState()).toMatchObject({
      settled: true,
      models: [{ name: 'blazeface', state: 'active' }],
    });
    await agent.stop();

    // Second start: same identity, no token, model still active from the store.
    const again = new Agent(config(), { logger: silentLogger, env: {} });
    await again.start();
    expect(again.credentials!.deviceId).toBe(deviceId);
    await waitFor(() => again.reconciler?.isSettled(), { what: 'settled after restart' });
    expect(again.reconciler!.reportedModels()).toEqual([
      expect.objectContaining({ name: 'blazeface', state: 'active' }),
    ]);
    await again.stop();
  });
});
