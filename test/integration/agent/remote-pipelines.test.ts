import '../../../agent/test/pipeline/helpers/ort-realm';
import fs from 'node:fs';
import path from 'node:path';
import type { ReportedState } from '@perch/shared';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { createPipelineHost } from '../../../agent/src/pipeline/host';
import { identityModel } from '../../../agent/test/pipeline/helpers/onnx-builder';
import {
  api,
  assignModels,
  BLAZEFACE_SPEC,
  createEnrollToken,
  silentLogger,
  startHarness,
  uploadBundle,
  type Harness,
} from '../controller/harness';

jest.setTimeout(180_000);

/**
 * The device policy for pipelines from the desired state (`remotePipelines`), with a real controller,
 * a real in-process agent and the real pipeline host: a `sensor-command` pipeline put into the desired
 * state by an operator is refused by default (the program never runs, the refusal is in `reported`) while
 * the other pipeline runs; once the device owner allows commands in the agent config, it runs.
 */
describe('remote pipeline policy on the real agent', () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  let agent: Agent | undefined;

  beforeAll(async () => {
    h = await startHarness();
    tmp = tempDir('perch-remote-policy-');
    const face = await uploadBundle(h, 'blazeface', '1', {
      model: fs.readFileSync(fixturePath('blazeface.onnx')),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
    });
    const sensor = await uploadBundle(h, 'sensor-cls', '1', {
      model: Buffer.from(identityModel([1, 3])),
      spec: JSON.stringify({
        schemaVersion: 1,
        input: { kind: 'tensor', name: 'x', shape: [1, 3] },
        postprocessor: { kind: 'classification', params: { topK: 1 } },
      }),
      labels: 'idle\nwalk\nrun\n',
    });
    expect([face.status, sensor.status]).toEqual([201, 201]);
  });
  afterAll(async () => {
    await agent?.stop();
    await h?.close();
    tmp?.cleanup();
  });

  const start = async (remotePipelines: Record<string, unknown>, enrollToken?: string) => {
    const a = new Agent(
      agentConfigSchema.parse({
        stateDir: path.join(tmp.dir, 'state'),
        controllerUrl: h.ctl.url,
        ...(enrollToken ? { enrollToken } : {}),
        telemetry: { intervalS: 3600 },
        update: { warmupRuns: 1, trialRuns: 1 },
        mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
        remotePipelines,
      }),
      {
        logger: silentLogger,
        env: {},
        pipelineHost: (deps) =>
          createPipelineHost({ ...deps, logger: silentLogger, inference: { intraOpThreads: 1 } }),
      },
    );
    agent = a;
    await a.start();
    return a;
  };

  /** The reported state the controller stored, once `check` holds for it. */
  const reportedWhen = (deviceId: string, check: (r: ReportedState) => boolean, what: string) =>
    waitFor(
      async () => {
        const res = await api<{ reported: ReportedState | null }>(
          h,
          'GET',
          `/api/v1/devices/${deviceId}`,
          h.adminToken,
        );
        const r = res.body.reported;
        return r && check(r) ? r : undefined;
      },
      { what, timeoutMs: 90_000, intervalMs: 100 },
    );

  it('refuses a desired sensor-command pipeline by default and runs it once the device config allows commands', async () => {
    const marker = path.join(tmp.dir, 'command-ran');
    const inbox = path.join(tmp.dir, 'inbox');
    fs.mkdirSync(inbox);
    const pipelines = [
      {
        id: 'probe',
        model: 'sensor-cls',
        source: {
          kind: 'sensor-command',
          command: ['/bin/sh', '-c', `echo ran >> '${marker}'; while :; do echo 0,0,5; sleep 0.1; done`],
          channels: 3,
          window: 1,
        },
      },
      {
        id: 'door',
        model: 'blazeface',
        source: { kind: 'folder', path: inbox, stableMs: 50, rescanMs: 200 },
      },
    ];

    const first = await start({}, await createEnrollToken(h));
    const deviceId = first.credentials!.deviceId;
    const { rev } = await assignModels(
      h,
      deviceId,
      [
        { name: 'blazeface', version: '1' },
        { name: 'sensor-cls', version: '1' },
      ],
      pipelines,
    );
    const refused = await reportedWhen(
      deviceId,
      (r) =>
        r.rev >= rev &&
        r.pipelines.some((p) => p.id === 'door' && p.state === 'running') &&
        r.pipelines.some((p) => p.id === 'probe' && p.state === 'failed'),
      'probe refused and door running',
    );
    expect(refused.pipelines.find((p) => p.id === 'probe')).toMatchObject({
      state: 'failed',
      error: { code: 'E_PIPELINE_SOURCE_NOT_ALLOWED' },
    });
    // Both pipelines were handed over in one apply and door runs: the command would have run by now.
    expect(fs.existsSync(marker)).toBe(false);
    expect(first.counters.get('errors.e_pipeline_source_not_allowed')).toBe(1);
    await first.stop();

    // The device owner allows commands: the cached desired state is applied again at start.
    const second = await start({ allowCommandSources: true });
    await waitFor(() => fs.existsSync(marker), { what: 'the command ran', timeoutMs: 60_000 });
    const probe = await waitFor(
      () => second.pipelines!.stats().find((p) => p.id === 'probe' && p.processed > 0),
      { what: 'sensor readings processed', timeoutMs: 60_000 },
    );
    expect(probe.state).toBe('running');
    await reportedWhen(
      deviceId,
      (r) =>
        r.pipelines.some((p) => p.id === 'probe' && p.state === 'running') &&
        r.pipelines.some((p) => p.id === 'door' && p.state === 'running'),
      'both pipelines reported running',
    );
    expect(second.counters.get('errors.e_pipeline_source_not_allowed')).toBe(0);
  });
});
