import '../../../agent/test/pipeline/helpers/ort-realm';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { systemClock, type Clock, type ReportedModel, type ReportedState } from '@perch/shared';
import { FaultProxy, type Fault } from '../../helpers/fault-proxy';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { createPipelineHost } from '../../../agent/src/pipeline/host';
import { publishBundle } from '../../../controller/src/models/publish';
import { throwingModel } from '../../../agent/test/pipeline/helpers/onnx-builder';
import { facePhotos } from '../pipeline/helpers';
import {
  api,
  BLAZEFACE_SPEC,
  createEnrollToken,
  silentLogger,
  startHarness,
  uploadBundle,
  type Harness,
} from '../controller/harness';

jest.setTimeout(300_000);

const GOOD = 'good';
const DAY = 24 * 3600_000;

/**
 * Acceptance 2 of issue #4 end to end: a real controller (embedded broker), a fault proxy between the
 * agent and the controller's HTTP, and one in-process agent with a real BlazeFace pipeline on a folder of
 * photographs. Each bad update is refused with its code in the `reported` state the controller stores,
 * while the previous model stays active and keeps running inference, and nothing of the refused bundle
 * stays in the model store.
 */
describe('update refusals against the real controller', () => {
  let proxy: FaultProxy;
  let h: Harness;
  let agent: Agent;
  let tmp: ReturnType<typeof tempDir>;
  let inbox: string;
  let deviceId: string;
  let photos = 0;
  /** The controller signs TUF metadata with this clock; moving it back signs already-expired metadata. */
  let tufSkewMs = 0;
  const tufClock: Clock = { ...systemClock, now: () => Date.now() + tufSkewMs };
  const pipeline = () => ({
    id: 'door',
    model: 'blazeface',
    source: { kind: 'folder', path: inbox, stableMs: 50, rescanMs: 200 },
    rules: { labels: ['face'], minScore: 0.6 },
  });

  /** Each version gets different labels bytes (blank lines are ignored), so each is a distinct bundle. */
  let variant = 0;
  async function upload(
    version: string,
    extra: { securityVersion?: number; sample?: Buffer; model?: Buffer; spec?: string } = {},
  ): Promise<{ sha256: string; length: number }> {
    const up = await uploadBundle(h, 'blazeface', version, {
      model: fs.readFileSync(fixturePath('blazeface.onnx')),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: `face${'\n'.repeat(++variant)}`,
      ...extra,
    });
    expect(up.status).toBe(201);
    return { sha256: up.body.sha256 as string, length: up.body.length as number };
  }

  /**
   * A bundle whose sample the controller's upload check would refuse (E_MODEL_SAMPLE_INVALID), published
   * without that check as bundles uploaded before it existed were: the agent's probation must still catch it.
   */
  async function publishUnchecked(
    version: string,
    extra: { sample: Buffer; model?: Buffer; spec?: string },
  ): Promise<{ sha256: string }> {
    const published = await publishBundle(
      h.ctl.deps,
      'blazeface',
      version,
      {
        model: extra.model ?? fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: Buffer.from(extra.spec ?? JSON.stringify(BLAZEFACE_SPEC)),
        labels: Buffer.from(`face${'\n'.repeat(++variant)}`),
        sample: extra.sample,
      },
      undefined,
      'test',
      { checkSample: false },
    );
    return { sha256: published.sha256 };
  }

  async function desire(version: string): Promise<number> {
    const put = await api<{ desired: { rev: number } }>(
      h,
      'PUT',
      `/api/v1/devices/${deviceId}/desired`,
      h.adminToken,
      { models: [{ name: 'blazeface', version }], pipelines: [pipeline()] },
    );
    expect(put.status).toBe(200);
    return put.body.desired.rev;
  }

  /** The reported state as the controller stored it, once it covers `rev` and `check` holds. */
  async function reportedWhen(
    rev: number,
    check: (models: ReportedModel[]) => boolean,
    what: string,
  ): Promise<ReportedState> {
    return waitFor(
      async () => {
        const res = await api<{ reported: ReportedState | null }>(
          h,
          'GET',
          `/api/v1/devices/${deviceId}`,
          h.adminToken,
        );
        const r = res.body.reported;
        return r && r.rev >= rev && check(r.models) ? r : undefined;
      },
      { what, timeoutMs: 90_000, intervalMs: 100 },
    );
  }

  /** A new photograph goes through the pipeline, and the model that ran it is `version`. */
  async function inferenceRunsOn(version: string): Promise<void> {
    const before = agent.pipelines!.stats().find((p) => p.id === 'door')?.processed ?? 0;
    const photo = facePhotos()[photos % facePhotos().length]!;
    fs.copyFileSync(photo, path.join(inbox, `visitor-${++photos}.jpg`));
    const stats = await waitFor(
      () => {
        const s = agent.pipelines!.stats().find((p) => p.id === 'door');
        return s && s.processed > before ? s : undefined;
      },
      { what: `photo ${photos} processed`, timeoutMs: 60_000 },
    );
    expect(stats).toMatchObject({ state: 'running', model: { version } });
  }

  function storedVersions(): string[] {
    return fs.readdirSync(path.join(agent.paths.modelsDir, 'blazeface', 'versions'));
  }

  beforeAll(async () => {
    proxy = await FaultProxy.start();
    h = await startHarness({ publicUrl: proxy.url, tufClock });
    proxy.setUpstream(h.ctl.url);
    tmp = tempDir('perch-refusals-');
    inbox = path.join(tmp.dir, 'inbox');
    fs.mkdirSync(inbox);
    await upload('old', { securityVersion: 1 });
    await upload(GOOD, { securityVersion: 2 });
    const config = agentConfigSchema.parse({
      stateDir: path.join(tmp.dir, 'state'),
      controllerUrl: proxy.url,
      enrollToken: await createEnrollToken(h),
      telemetry: { intervalS: 3600 },
      update: {
        warmupRuns: 1,
        trialRuns: 2,
        // Small enough for a test to see them; a healthy 450 kB download over 127.0.0.1 is far inside.
        downloadDeadlineS: 4,
        downloadMinBytesPerSec: 1024,
        downloadWindowS: 1,
      },
      mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
    });
    agent = new Agent(config, {
      logger: silentLogger,
      env: {},
      pipelineHost: (deps) =>
        createPipelineHost({ ...deps, logger: silentLogger, inference: { intraOpThreads: 1 } }),
    });
    await agent.start();
    deviceId = agent.credentials!.deviceId;
    expect(agent.credentials!.controllerUrl).toBe(proxy.url);
    const rev = await desire(GOOD);
    await reportedWhen(
      rev,
      (models) => models.some((m) => m.version === GOOD && m.state === 'active'),
      'the good version active',
    );
    await waitFor(() => agent.pipelines!.stats().find((p) => p.id === 'door' && p.state === 'running'), {
      what: 'pipeline running',
      timeoutMs: 60_000,
    });
    await inferenceRunsOn(GOOD);
  });

  afterAll(async () => {
    await agent?.stop();
    await h?.close();
    await proxy?.close();
    tmp?.cleanup();
  });

  /** Asks for `version`, expects it refused with `code`, the good version still active and running. */
  async function expectRefused(version: string, code: string, sha256?: string): Promise<void> {
    const rev = await desire(version);
    const reported = await reportedWhen(
      rev,
      (models) => models.some((m) => m.version === version && m.state === 'failed'),
      `${version} refused`,
    );
    expect(reported.models).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'blazeface',
          version,
          state: 'failed',
          error: expect.objectContaining({ code }),
        }),
        expect.objectContaining({ name: 'blazeface', version: GOOD, state: 'active' }),
      ]),
    );
    expect(reported.pipelines).toEqual([expect.objectContaining({ id: 'door', state: 'running' })]);
    if (sha256) expect(storedVersions()).not.toContain(sha256);
    await inferenceRunsOn(GOOD);
  }

  it('refuses a bundle whose bytes were changed on the controller disk', async () => {
    const { sha256 } = await upload('tampered-disk');
    const file = path.join(h.home, 'artifacts', sha256);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x01;
    fs.writeFileSync(file, bytes);
    await expectRefused('tampered-disk', 'E_UPDATE_HASH_MISMATCH', sha256);
  });

  it('refuses a bundle changed on the wire by a proxy', async () => {
    const { sha256 } = await upload('tampered-wire');
    proxy.fault('/blazeface/tampered-wire/', { kind: 'flip' });
    await expectRefused('tampered-wire', 'E_UPDATE_HASH_MISMATCH', sha256);
    expect(proxy.hits('/blazeface/tampered-wire/').requests).toBeGreaterThan(0);
  });

  it('refuses a desired state whose hash is not the one in the signed target', async () => {
    const { sha256 } = await upload('wrong-hash');
    // The controller's registry row (and so the desired state it publishes) names other bytes than the
    // signed TUF target does.
    const other = createHash('sha256').update(randomBytes(32)).digest('hex');
    await h.ctl.deps.store.db
      .updateTable('model_versions')
      .set({ bundle_sha256: other })
      .where('model', '=', 'blazeface')
      .where('version', '=', 'wrong-hash')
      .execute();
    await expectRefused('wrong-hash', 'E_UPDATE_TARGET_MISMATCH', sha256);
    expect(storedVersions()).not.toContain(other);
  });

  it('refuses a version whose security version is below the installed one', async () => {
    await expectRefused('old', 'E_UPDATE_SECURITY_VERSION');
    const reported = await reportedWhen(0, () => true, 'reported');
    expect(reported.models.find((m) => m.version === GOOD)?.securityVersion).toBe(2);
  });

  it('refuses metadata that the controller signed with a clock so old that it has expired', async () => {
    tufSkewMs = -3 * DAY; // the timestamp role lives one day: this one expired two days ago
    let sha256: string;
    try {
      ({ sha256 } = await upload('expired'));
    } finally {
      tufSkewMs = 0;
    }
    await expectRefused('expired', 'E_UPDATE_METADATA_EXPIRED', sha256);
    // The operator fixes the clock and re-signs: the next good update goes through again (see below).
    await h.ctl.deps.tuf.resignTimestamp();
  });

  const downloadFaults: Array<[string, Fault, string]> = [
    // 16 kB/s is above the minimum throughput, but 4 s of it is far less than the signed length.
    ['endless', { kind: 'endless', bytesPerTick: 4096, tickMs: 250 }, 'E_DOWNLOAD_DEADLINE'],
    ['trickle', { kind: 'trickle', bytesPerTick: 64, tickMs: 250 }, 'E_DOWNLOAD_TOO_SLOW'],
    ['flood', { kind: 'flood' }, 'E_DOWNLOAD_TOO_LARGE'],
  ];

  it.each(downloadFaults)('aborts the %s download with its code', async (version, fault, code) => {
    const { sha256, length } = await upload(version);
    proxy.fault(`/blazeface/${version}/`, fault);
    await expectRefused(version, code, sha256);
    const hits = proxy.hits(`/blazeface/${version}/`);
    expect(hits.requests).toBeGreaterThan(0);
    if (fault.kind === 'flood') expect(hits.bytes).toBeGreaterThan(length);
    // Never more than the signed length on disk, whatever the server sends.
    const downloads = agent.paths.downloadsDir;
    for (const f of fs.existsSync(downloads) ? fs.readdirSync(downloads) : []) {
      expect(fs.statSync(path.join(downloads, f)).size).toBeLessThanOrEqual(length);
    }
  });

  it('reverts a bundle that loads but fails its self-test on the sample input', async () => {
    // BlazeFace loads and runs on the zero tensors of the warm-up, but the bundle's own sample input
    // (NaN everywhere) makes it produce non-finite outputs: the self-test must catch that.
    const sample = Buffer.alloc(128 * 128 * 3 * 4);
    for (let i = 0; i < sample.length; i += 4) sample.writeFloatLE(Number.NaN, i);
    const { sha256 } = await publishUnchecked('bad-sample', { sample });
    await expectRefused('bad-sample', 'E_UPDATE_PROBATION_FAILED', sha256);
    const reported = await reportedWhen(0, () => true, 'reported');
    expect(reported.models.find((m) => m.version === 'bad-sample')?.error?.message).toMatch(/self-test/);
  });

  it('reverts a model that loads but throws in onnxruntime on its sample input', async () => {
    // A synthetic image model: a Gather indexed by the brightest input value, out of range from 3 up.
    // Zeros (the warm-up) pass; the sample (all 10.0) makes onnxruntime throw in the self-test.
    const model = Buffer.from(throwingModel({ name: 'input:0', shape: [1, 128, 128, 3] }));
    const spec = JSON.stringify({ ...BLAZEFACE_SPEC, postprocessor: { kind: 'raw', params: {} } });
    const sample = Buffer.alloc(128 * 128 * 3 * 4);
    for (let i = 0; i < sample.length; i += 4) sample.writeFloatLE(10, i);
    const { sha256 } = await publishUnchecked('throws', { model, spec, sample });
    await expectRefused('throws', 'E_UPDATE_PROBATION_FAILED', sha256);
    const reported = await reportedWhen(0, () => true, 'reported');
    expect(reported.models.find((m) => m.version === 'throws')?.error?.message).toMatch(
      /self-test: .*indices/i,
    );
  });

  it('reverts a bundle whose sample does not fit the model input, instead of testing on zeros', async () => {
    // 8 bytes for a 1 x 128 x 128 x 3 float32 input: the controller now refuses it at upload; a bundle
    // published before that check must still fail its probation rather than pass a self-test of nothing.
    const { sha256 } = await publishUnchecked('short-sample', { sample: Buffer.alloc(8) });
    await expectRefused('short-sample', 'E_UPDATE_PROBATION_FAILED', sha256);
    const reported = await reportedWhen(0, () => true, 'reported');
    expect(reported.models.find((m) => m.version === 'short-sample')?.error?.message).toMatch(
      /self-test: sample\.bin is 8 bytes; .* needs 196608 bytes/,
    );
  });

  it('still installs a good update after all of the refusals', async () => {
    const { sha256 } = await upload('good-again');
    const rev = await desire('good-again');
    await reportedWhen(
      rev,
      (models) => models.length === 1 && models[0]!.version === 'good-again' && models[0]!.state === 'active',
      'good-again active',
    );
    expect(agent.reconciler!.reportedModels()).toEqual([
      expect.objectContaining({ version: 'good-again', sha256, state: 'active' }),
    ]);
    await waitFor(
      () => agent.pipelines!.stats().find((p) => p.id === 'door' && p.model?.version === 'good-again'),
      { what: 'pipeline on good-again' },
    );
    await inferenceRunsOn('good-again');
  });
});
