import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ManualClock, PerchError, type DesiredModel } from '@perch/shared';
import { fixturePath } from '../../../test/helpers/fixtures';
import { tempDir } from '../../../test/helpers/tmp';
import { buildBundle } from '../../src/core/bundle';
import { Counters } from '../../src/core/counters';
import { Downloader } from '../../src/core/downloader';
import { ModelStore } from '../../src/core/model-store';
import { NoopPipelineHost } from '../../src/core/pipelines-port';
import { OnnxProbation } from '../../src/core/probation';
import { Reconciler, type ReconcileReport } from '../../src/core/reconcile/reconciler';
import type { ResolvedTarget, TargetResolver } from '../../src/core/tuf-client';
import { desiredState, silentLogger } from './helpers';

jest.setTimeout(60_000);

const SPEC = JSON.stringify({
  input: { kind: 'image', name: 'input:0', layout: 'NHWC', width: 128, height: 128 },
  postprocessor: { kind: 'blazeface', params: {} },
});

interface Artifact {
  name: string;
  version: string;
  tar: Buffer;
  sha256: string;
  securityVersion: number;
}

function artifact(name: string, version: string, model: Buffer, securityVersion = 0): Artifact {
  const tar = buildBundle([
    ['model.onnx', model],
    ['spec.json', Buffer.from(SPEC)],
    // The version in the labels keeps bundles of the same weights distinct.
    ['labels.txt', Buffer.from(`face\n# ${version}\n`)],
  ]);
  return {
    name,
    version,
    tar,
    sha256: crypto.createHash('sha256').update(tar).digest('hex'),
    securityVersion,
  };
}

const toDesired = (a: Artifact, extra: Partial<DesiredModel> = {}): DesiredModel => ({
  name: a.name,
  version: a.version,
  target: `models/${a.name}/${a.version}/bundle.tar`,
  sha256: a.sha256,
  length: a.tar.length,
  securityVersion: a.securityVersion,
  ...extra,
});

/** Serves the artifacts; `tamper` flips one byte of what is served (the signed metadata stays right). */
class ArtifactServer implements TargetResolver {
  readonly served = new Map<string, Buffer>();
  readonly signed = new Map<string, Artifact>();
  /** Replaces the signed `custom` of a target path (as if the controller had signed something else). */
  readonly custom = new Map<string, Record<string, unknown>>();
  tamper = false;
  requests = 0;
  private server = http.createServer((req, res) => {
    this.requests++;
    const body = this.served.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const out = Buffer.from(body);
    if (this.tamper) out[out.length - 2000]! ^= 0xff;
    res.writeHead(200, { 'content-length': out.length }).end(out);
  });
  private base = '';

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  publish(a: Artifact): void {
    this.served.set(`/${a.sha256}.bundle.tar`, a.tar);
    this.signed.set(`models/${a.name}/${a.version}/bundle.tar`, a);
  }

  resolve(targetPath: string): Promise<ResolvedTarget> {
    const a = this.signed.get(targetPath);
    if (!a) return Promise.reject(new PerchError('E_UPDATE_TARGET_UNKNOWN', targetPath));
    return Promise.resolve({
      path: targetPath,
      length: a.tar.length,
      sha256: a.sha256,
      custom: this.custom.get(targetPath) ?? {
        model: a.name,
        version: a.version,
        securityVersion: a.securityVersion,
      },
      url: `${this.base}/${a.sha256}.bundle.tar`,
      verify: (file: string) =>
        fs.readFileSync(file).equals(a.tar)
          ? Promise.resolve()
          : Promise.reject(new PerchError('E_UPDATE_HASH_MISMATCH', 'signed target mismatch')),
    });
  }

  invalidate(): void {}
  downloadHeaders(): Record<string, string> {
    return {};
  }
}

describe('Reconciler (real store, downloader and onnxruntime)', () => {
  const blazeface = fs.readFileSync(fixturePath('blazeface.onnx'));
  const v1 = artifact('faces', '1.0.0', blazeface, 1);
  const v2 = artifact('faces', '2.0.0', blazeface, 2);
  const v2b = artifact('faces', '2.1.0', blazeface, 2);
  const broken = artifact('faces', '3.0.0', crypto.randomBytes(4096), 3);

  let tmp: ReturnType<typeof tempDir>;
  let server: ArtifactServer;
  let store: ModelStore;
  let host: NoopPipelineHost;
  let reports: ReconcileReport[];
  let reconciler: Reconciler;
  let clock: ManualClock;
  let counters: Counters;

  beforeEach(async () => {
    tmp = tempDir();
    server = new ArtifactServer();
    await server.listen();
    for (const a of [v1, v2, v2b, broken]) server.publish(a);
    clock = new ManualClock(Date.now());
    counters = new Counters();
    store = new ModelStore(path.join(tmp.dir, 'models'), silentLogger(), counters);
    host = new NoopPipelineHost();
    reports = [];
    reconciler = new Reconciler({
      store,
      downloader: new Downloader(clock, silentLogger()),
      resolver: () => server,
      probation: new OnnxProbation({ warmupRuns: 1, trialRuns: 3 }, silentLogger()),
      pipelines: host,
      downloadsDir: path.join(tmp.dir, 'downloads'),
      failuresFile: path.join(tmp.dir, 'failures.json'),
      clock,
      logger: silentLogger(),
      counters,
      onReport: (r) => reports.push(r),
    });
  });
  afterEach(async () => {
    await reconciler.stop();
    await server.close();
    tmp.cleanup();
  });

  async function apply(models: DesiredModel[], rev: number) {
    reconciler.setDesired(
      desiredState(models, rev, [{ id: 'door', model: 'faces', source: { kind: 'lavfi' } }]),
    );
    await reconciler.idle();
    return reports.at(-1)!;
  }

  const versionsOnDisk = () => fs.readdirSync(path.join(tmp.dir, 'models', 'faces', 'versions')).sort();

  it('installs the BlazeFace bundle through every step and hands it to the pipelines', async () => {
    const report = await apply([toDesired(v1)], 1);
    expect(report).toMatchObject({
      rev: 1,
      settled: true,
      models: [{ name: 'faces', version: '1.0.0', state: 'active' }],
    });
    expect(reports.some((r) => r.models[0]?.state === 'downloading')).toBe(true);
    expect(reports.some((r) => r.models[0]?.state === 'trial')).toBe(true);
    const applied = host.lastApplied();
    expect(applied.pipelines.map((p) => p.id)).toEqual(['door']);
    expect(applied.models.get('faces')).toMatchObject({ version: '1.0.0', sha256: v1.sha256 });
    expect(store.pointers('faces')).toMatchObject({ current: { sha256: v1.sha256 }, securityVersion: 1 });
    expect(fs.readdirSync(path.join(tmp.dir, 'downloads'))).toEqual([]);
  });

  it('switches to a new version, keeps the old one as previous and collects the rest', async () => {
    await apply([toDesired(v1)], 1);
    await apply([toDesired(v2)], 2);
    const report = await apply([toDesired(v2b)], 3);
    expect(report.models).toEqual([expect.objectContaining({ version: '2.1.0', state: 'active' })]);
    expect(store.pointers('faces')).toMatchObject({
      current: { version: '2.1.0' },
      previous: { version: '2.0.0' },
    });
    expect(versionsOnDisk()).toEqual([v2.sha256, v2b.sha256].sort());
  });

  it('keeps the old model when the new one fails probation, and leaves nothing of it behind', async () => {
    await apply([toDesired(v1)], 1);
    const report = await apply([toDesired(broken)], 2);
    expect(report.settled).toBe(true);
    expect(report.models).toEqual([
      expect.objectContaining({
        version: '3.0.0',
        state: 'failed',
        error: expect.objectContaining({ code: 'E_UPDATE_PROBATION_FAILED' }),
      }),
      expect.objectContaining({ version: '1.0.0', state: 'active' }),
    ]);
    expect(store.pointers('faces').current?.version).toBe('1.0.0');
    expect(store.pointers('faces').trial).toBeUndefined();
    expect(versionsOnDisk()).toEqual([v1.sha256]);
    // A permanent failure is not retried on the next trigger.
    const before = server.requests;
    reconciler.trigger();
    await reconciler.idle();
    expect(server.requests).toBe(before);
  });

  it('refuses a tampered artifact with a code and keeps the old model', async () => {
    await apply([toDesired(v1)], 1);
    server.tamper = true;
    const report = await apply([toDesired(v2)], 2);
    expect(report.models[0]).toMatchObject({ state: 'failed', error: { code: 'E_UPDATE_HASH_MISMATCH' } });
    expect(report.models[1]).toMatchObject({ version: '1.0.0', state: 'active' });
    expect(versionsOnDisk()).toEqual([v1.sha256]);
    expect(fs.readdirSync(path.join(tmp.dir, 'downloads'))).toEqual([]);
    // Retried with backoff: once the artifact is right again, the update goes through.
    server.tamper = false;
    // Step the clock until the retry timer fires (the first retry comes within retryBaseMs), then let
    // the run finish without moving the clock (which would trip the download throughput check).
    const runs = reconciler.runCount();
    while (reconciler.runCount() === runs) await clock.advance(500);
    await reconciler.idle();
    expect(store.pointers('faces').current?.version).toBe('2.0.0');
  });

  it('refuses a desired hash that differs from the signed target', async () => {
    const report = await apply([toDesired(v1, { sha256: 'a'.repeat(64) })], 1);
    expect(report.models[0]).toMatchObject({ state: 'failed', error: { code: 'E_UPDATE_TARGET_MISMATCH' } });
  });

  it('refuses a lower security version without downloading anything', async () => {
    await apply([toDesired(v2)], 1);
    const before = server.requests;
    const report = await apply([toDesired(v1)], 2);
    expect(server.requests).toBe(before);
    expect(report.models[0]).toMatchObject({
      version: '1.0.0',
      state: 'failed',
      error: { code: 'E_UPDATE_SECURITY_VERSION' },
    });
    expect(store.pointers('faces').current?.version).toBe('2.0.0');
  });

  it('refuses a desired state that claims a higher security version than the signed one, without downloading', async () => {
    await apply([toDesired(v2)], 1);
    const before = server.requests;
    // v1 is signed with security version 1; the (unsigned) desired state claims 2 to pass the floor.
    const report = await apply([toDesired(v1, { securityVersion: 2 })], 2);
    expect(server.requests).toBe(before);
    expect(report.models[0]).toMatchObject({
      version: '1.0.0',
      state: 'failed',
      error: { code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' },
    });
    expect(store.pointers('faces')).toMatchObject({ current: { version: '2.0.0' }, securityVersion: 2 });
  });

  it('does not reinstate the previous version from disk under a spoofed security version', async () => {
    await apply([toDesired(v1)], 1);
    await apply([toDesired(v2)], 2);
    expect(store.pointers('faces').previous?.version).toBe('1.0.0');
    // v1 is still on disk, so no download would ever look at its signed metadata.
    const report = await apply([toDesired(v1, { securityVersion: 2 })], 3);
    expect(report.models[0]).toMatchObject({
      state: 'failed',
      error: { code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' },
    });
    expect(store.pointers('faces')).toMatchObject({
      current: { version: '2.0.0', securityVersion: 2 },
      securityVersion: 2,
    });
    expect(store.pointers('faces').trial).toBeUndefined();
  });

  it('does not raise the persisted security version on a desired claim, and installs once the claim is corrected', async () => {
    // v1 is signed with 1; a desired state claiming 9 would lock the device out of versions 1..8.
    const refused = await apply([toDesired(v1, { securityVersion: 9 })], 1);
    expect(refused.models[0]).toMatchObject({ error: { code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' } });
    expect(store.pointers('faces')).toEqual({ securityVersion: 0 });
    // The same bundle with the right claim goes through on the next retry.
    await apply([toDesired(v1)], 2);
    const runs = reconciler.runCount();
    while (reconciler.runCount() === runs) await clock.advance(500);
    await reconciler.idle();
    expect(store.pointers('faces')).toMatchObject({
      current: { version: '1.0.0', securityVersion: 1 },
      securityVersion: 1,
    });
  });

  it('refuses a signed target that carries no security version', async () => {
    server.custom.set(`models/faces/1.0.0/bundle.tar`, { model: 'faces', version: '1.0.0' });
    const report = await apply([toDesired(v1)], 1);
    expect(report.models[0]).toMatchObject({ error: { code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' } });
    expect(store.pointers('faces').current).toBeUndefined();
  });

  it('gives up a trial after repeated crashes and keeps the previous model', async () => {
    await apply([toDesired(v1)], 1);
    // As if the agent died three times during probation of v2.
    fs.mkdirSync(path.join(tmp.dir, 'models', 'faces', 'versions'), { recursive: true });
    fs.writeFileSync(store.versionPath('faces', v2.sha256), v2.tar);
    for (let i = 0; i < 3; i++)
      store.beginTrial('faces', { sha256: v2.sha256, version: v2.version, securityVersion: 2 });
    const report = await apply([toDesired(v2)], 2);
    expect(report.models[0]).toMatchObject({
      state: 'failed',
      error: { code: 'E_UPDATE_PROBATION_CRASHED' },
    });
    expect(store.pointers('faces')).toMatchObject({ current: { version: '1.0.0' } });
    expect(store.pointers('faces').trial).toBeUndefined();
  });

  it('restores the previous model when the installed one fails its re-check, then heals', async () => {
    await apply([toDesired(v1)], 1);
    await apply([toDesired(v2)], 2);
    const file = store.versionPath('faces', v2.sha256);
    const bytes = fs.readFileSync(file);
    bytes[1000]! ^= 1;
    fs.writeFileSync(file, bytes);
    const applied: string[] = [];
    const spy = jest.spyOn(host, 'apply').mockImplementation((_p, models) => {
      applied.push(models.get('faces')?.version ?? 'none');
      return Promise.resolve();
    });
    // New pipelines force a reload of the model, which re-checks it.
    reconciler.setDesired(
      desiredState([toDesired(v2)], 3, [{ id: 'porch', model: 'faces', source: { kind: 'lavfi' } }]),
    );
    await reconciler.idle();
    spy.mockRestore();
    expect(counters.get('errors.e_update_rollback')).toBe(1);
    // The tampered copy never reached a pipeline (they kept their verified in-memory copy); the store fell
    // back to the previous model, fetched v2 again and handed the fresh, verified copy over.
    expect(applied).toEqual(['2.0.0']);
    expect(store.pointers('faces')).toMatchObject({
      current: { version: '2.0.0' },
      previous: { version: '1.0.0' },
    });
    expect(fs.readFileSync(file).equals(v2.tar)).toBe(true);
  });

  it('coalesces triggers that arrive during a run into one more run', async () => {
    reconciler.setDesired(desiredState([toDesired(v1)], 1));
    for (let i = 0; i < 10; i++) reconciler.trigger();
    await reconciler.idle();
    expect(reconciler.runCount()).toBe(2);
  });

  it('ignores an older desired revision', async () => {
    await apply([toDesired(v1)], 5);
    expect(reconciler.setDesired(desiredState([toDesired(v2)], 4))).toBe(false);
    expect(reconciler.getDesired()?.rev).toBe(5);
  });
});
