// The controller runs onnxruntime in-process (the upload check infers on the sample).
import '../../../agent/test/pipeline/helpers/ort-realm';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fixturePath, REPO_ROOT } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { ModelStore } from '../../../agent/src/core/model-store';
import { Counters } from '../../../agent/src/core/counters';
import {
  api,
  BLAZEFACE_SPEC,
  createEnrollToken,
  silentLogger,
  startHarness,
  uploadBundle,
  type Harness,
} from '../controller/harness';

jest.setTimeout(180_000);

const CLI = path.join(REPO_ROOT, 'agent', 'dist', 'cli', 'perch-agent.js');
const STEPS = ['download', 'verify', 'stage', 'trial-pointer', 'probation', 'trial-passed', 'activate'];

/**
 * "Power cut" at each named update step: the real perch-agent (agent/dist) is started with
 * PERCH_TEST_KILL_AT=<step> and SIGKILLs itself there; a restarted agent must come up on a whole,
 * verified model (old or new, never none) and reach a settled state with the new one active.
 */
describe('agent killed at each update step', () => {
  beforeAll(() => {
    // npm test builds first; a missing build is a failure, not a silent skip.
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -b\` first`);
  });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    for (const version of ['1', '2']) {
      const up = await uploadBundle(h, 'blazeface', version, {
        model: fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: JSON.stringify(BLAZEFACE_SPEC),
        labels: `face\n`,
        // Version 2 carries a sample that fits BlazeFace's 1 x 128 x 128 x 3 float32 input (zeros), so
        // its probation runs the self-test at every step it can be killed at.
        sample: version === '2' ? Buffer.alloc(128 * 128 * 3 * 4) : undefined,
      });
      expect(up.status).toBe(201);
    }
  });
  afterAll(async () => h?.close());

  it.each(STEPS)('restarts on a whole model and settles after a kill at %s', async (step) => {
    const tmp = tempDir('perch-kill-');
    try {
      const config = (token?: string) =>
        agentConfigSchema.parse({
          stateDir: tmp.dir,
          controllerUrl: h.ctl.url,
          ...(token ? { enrollToken: token } : {}),
          telemetry: { intervalS: 3600 },
          update: { warmupRuns: 1, trialRuns: 1 },
        });
      // Enroll and install version 1.
      const first = new Agent(config(await createEnrollToken(h)), { logger: silentLogger, env: {} });
      await first.start();
      const deviceId = first.credentials!.deviceId;
      await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
        models: [{ name: 'blazeface', version: '1' }],
        pipelines: [],
      });
      await waitFor(
        () => first.reconciler?.reportedModels()[0]?.state === 'active' && first.reconciler.isSettled(),
        {
          what: 'version 1 active',
        },
      );
      await first.stop();
      // Ask for version 2, then run the real binary until it kills itself at the step.
      await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
        models: [{ name: 'blazeface', version: '2' }],
        pipelines: [],
      });
      const child = spawn(process.execPath, [CLI], {
        env: { ...process.env, PERCH_STATE_DIR: tmp.dir, PERCH_TEST_KILL_AT: step, PERCH_LOG_SILENT: '1' },
        stdio: 'ignore',
      });
      const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_c, s) => resolve(s)),
      );
      expect(signal).toBe('SIGKILL');
      // Whatever is current now is whole and verified.
      const store = new ModelStore(path.join(tmp.dir, 'models'), silentLogger, new Counters());
      const current = store.pointers('blazeface').current;
      expect(current).toBeDefined();
      await expect(store.load('blazeface', current!)).resolves.toBeDefined();
      // Restarted, it settles with version 2 active.
      const again = new Agent(config(), { logger: silentLogger, env: {} });
      await again.start();
      await waitFor(() => again.reconciler?.isSettled(), { what: 'settled', timeoutMs: 60_000 });
      expect(again.reconciler!.reportedModels()).toEqual([
        expect.objectContaining({ version: '2', state: 'active' }),
      ]);
      await again.stop();
    } finally {
      tmp.cleanup();
    }
  });
});
