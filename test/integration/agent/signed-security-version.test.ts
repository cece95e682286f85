import fs from 'node:fs';
import path from 'node:path';
import { topics, type DesiredModel, type DesiredState } from '@perch/shared';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { Counters } from '../../../agent/src/core/counters';
import { ModelStore } from '../../../agent/src/core/model-store';
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

/**
 * The desired state is not signed; the security version in the signed TUF target is. Here the desired
 * state is written straight to the device's retained topic, as a broker or database compromise would,
 * with a security version that differs from the one the controller signed.
 */
describe('agent enforces the signed security version against the real controller', () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  let agent: Agent | undefined;
  beforeAll(async () => {
    h = await startHarness();
    for (const [version, securityVersion] of [
      ['1', 1],
      ['2', 2],
      ['3', 3],
    ] as const) {
      const up = await uploadBundle(h, 'blazeface', version, {
        model: fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: JSON.stringify(BLAZEFACE_SPEC),
        labels: `face\n# ${version}\n`,
        securityVersion,
      });
      expect(up.status).toBe(201);
    }
  });
  beforeEach(() => {
    tmp = tempDir('perch-agent-sv-');
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    tmp.cleanup();
  });
  afterAll(async () => h?.close());

  const config = (token: string) =>
    agentConfigSchema.parse({
      stateDir: tmp.dir,
      controllerUrl: h.ctl.url,
      enrollToken: token,
      telemetry: { intervalS: 3600 },
      update: { warmupRuns: 1, trialRuns: 1 },
      mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
    });

  const pointers = () =>
    new ModelStore(path.join(tmp.dir, 'models'), silentLogger, new Counters()).pointers('blazeface');

  async function startAgent(): Promise<{ agent: Agent; deviceId: string }> {
    const a = new Agent(config(await createEnrollToken(h)), { logger: silentLogger, env: {} });
    agent = a;
    await a.start();
    await waitFor(() => a.session?.connected, { what: 'mqtt connect' });
    return { agent: a, deviceId: a.credentials!.deviceId };
  }

  /** Assigns through the API (what the controller signs and publishes) and waits until it is active. */
  async function assign(a: Agent, deviceId: string, version: string): Promise<DesiredState> {
    const put = await api<{ desired: DesiredState }>(
      h,
      'PUT',
      `/api/v1/devices/${deviceId}/desired`,
      h.adminToken,
      {
        models: [{ name: 'blazeface', version }],
        pipelines: [],
      },
    );
    expect(put.status).toBe(200);
    await waitFor(
      () =>
        a.reconciler?.reportedModels().find((m) => m.version === version && m.state === 'active') &&
        a.reconciler.isSettled(),
      { what: `version ${version} active`, timeoutMs: 60_000 },
    );
    return put.body.desired;
  }

  /** Publishes a desired state that bypasses the API, as the retained message devices subscribe to. */
  async function spoof(a: Agent, deviceId: string, rev: number, model: DesiredModel): Promise<void> {
    const doc: DesiredState = { v: 1, rev, ts: Date.now(), models: [model], pipelines: [] };
    await h.ctl.deps.bus.publishRetained(
      topics.desired(deviceId, h.ctl.deps.settings.topicPrefix),
      JSON.stringify(doc),
    );
    await waitFor(() => a.reconciler?.getDesired()?.rev === rev, { what: `desired rev ${rev}` });
  }

  it('refuses an older signed version whose desired state claims the installed security version', async () => {
    const { agent: a, deviceId } = await startAgent();
    await assign(a, deviceId, '1');
    const d2 = await assign(a, deviceId, '2');
    // Version 1 is still on disk as the previous version; claim it is security version 2.
    const v1 = await signedModel('1');
    expect(v1.securityVersion).toBe(1);
    await spoof(a, deviceId, d2.rev + 1, { ...v1, securityVersion: 2 });
    // Wait for either outcome, so that an agent that installs it fails here at once.
    const outcome = await waitFor(
      () =>
        a.reconciler
          ?.reportedModels()
          .find((m) => m.version === '1' && (m.state === 'active' || (m.state === 'failed' && m.error))),
      { what: 'version 1 refused or installed', timeoutMs: 60_000 },
    );
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' } });
    expect(pointers()).toMatchObject({ current: { version: '2', securityVersion: 2 }, securityVersion: 2 });
  });

  it('refuses a newer signed version whose desired state claims a lower security version, then installs it as signed', async () => {
    const { agent: a, deviceId } = await startAgent();
    const d2 = await assign(a, deviceId, '2');
    const v3 = await signedModel('3');
    expect(v3.securityVersion).toBe(3);
    // A lower claim would keep the persisted floor at 2, leaving version 2 installable again later.
    const sha256 = d2.models[0]!.sha256;
    await spoof(a, deviceId, d2.rev + 1, { ...v3, securityVersion: 2 });
    // Wait for either outcome, so that an agent that installs it fails here at once.
    const outcome = await waitFor(
      () =>
        a.reconciler
          ?.reportedModels()
          .find((m) => m.version === '3' && (m.state === 'active' || (m.state === 'failed' && m.error))),
      { what: 'version 3 refused or installed', timeoutMs: 60_000 },
    );
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' } });
    expect(pointers()).toMatchObject({ current: { sha256, securityVersion: 2 }, securityVersion: 2 });
    // The controller's own desired state for the same bundle goes through once the retry comes.
    await assign(a, deviceId, '3');
    expect(pointers()).toMatchObject({ current: { version: '3', securityVersion: 3 }, securityVersion: 3 });
  });

  /** The desired model the controller would publish for a version, from its registry entry. */
  async function signedModel(version: string): Promise<DesiredModel> {
    const res = await api<DesiredModel & { model: string }>(
      h,
      'GET',
      `/api/v1/models/blazeface/versions/${version}`,
      h.adminToken,
    );
    expect(res.status).toBe(200);
    const { target, sha256, length, securityVersion } = res.body;
    return { name: 'blazeface', version, target, sha256, length, securityVersion };
  }
});
