import { PerchError, type ModelSpec } from '@perch/shared';
import type { AppDeps } from '../context';
import { audit } from '../audit';
import { writeTar } from './tar';
import { validateBundle } from './validate';
import { createHash } from 'node:crypto';

export interface BundleFiles {
  model: Buffer;
  spec: Buffer;
  labels: Buffer;
  sample?: Buffer;
}

export interface PublishedVersion {
  model: string;
  version: string;
  securityVersion: number;
  target: string;
  sha256: string;
  length: number;
  files: Record<string, { sha256: string; length: number }>;
  spec: ModelSpec;
  createdAt: number;
}

export interface PublishOptions {
  /**
   * Default true. False publishes a sample without the upload check, as bundles published before the
   * check existed were; only tests of the agent's own defence (probation) use it.
   */
  checkSample?: boolean;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Validates a bundle, stores it content-addressed as one tar, and signs it into the TUF targets.
 * Versions are immutable; the model's security version never decreases. A sample must fit the spec's
 * input and run (E_MODEL_SAMPLE_INVALID).
 */
export async function publishBundle(
  deps: AppDeps,
  name: string,
  version: string,
  files: BundleFiles,
  requestedSecurityVersion: number | undefined,
  actor: string,
  options: PublishOptions = {},
): Promise<PublishedVersion> {
  const { store, clock, tuf, artifacts } = deps;
  const existing = await store.db
    .selectFrom('model_versions')
    .select('version')
    .where('model', '=', name)
    .where('version', '=', version)
    .executeTakeFirst();
  if (existing)
    throw new PerchError('E_CONFLICT', `model ${name} version ${version} exists; versions are immutable`);
  const model = await store.db.selectFrom('models').selectAll().where('name', '=', name).executeTakeFirst();
  const current = model?.security_version ?? 0;
  const securityVersion = requestedSecurityVersion ?? current;
  if (securityVersion < current) {
    throw new PerchError(
      'E_MODEL_SECURITY_VERSION',
      `security version ${securityVersion} is below the current ${current}`,
    );
  }
  const labelText = files.labels.toString('utf8');
  if (labelText.includes('\u0000')) throw new PerchError('E_MODEL_SPEC_INVALID', 'labels.txt is not text');
  const { spec } = await validateBundle(
    files.model,
    files.spec,
    options.checkSample === false ? undefined : files.sample,
  );

  const entries = [
    { name: 'model.onnx', data: files.model },
    { name: 'spec.json', data: files.spec },
    { name: 'labels.txt', data: files.labels },
    ...(files.sample ? [{ name: 'sample.bin', data: files.sample }] : []),
  ];
  const fileInfo: Record<string, { sha256: string; length: number }> = {};
  for (const e of entries) fileInfo[e.name] = { sha256: sha(e.data), length: e.data.length };
  const bundle = writeTar(entries);
  const stored = await artifacts.put(bundle);
  const target = `models/${name}/${version}/bundle.tar`;
  const now = clock.now();
  await tuf.addTargets([
    {
      path: target,
      length: stored.length,
      sha256: stored.sha256,
      custom: { model: name, version, securityVersion, files: fileInfo },
    },
  ]);
  await store.transaction(async (tx) => {
    if (model) {
      if (securityVersion > current)
        await tx
          .updateTable('models')
          .set({ security_version: securityVersion })
          .where('name', '=', name)
          .execute();
    } else {
      await tx
        .insertInto('models')
        .values({ name, security_version: securityVersion, created_at: now })
        .execute();
    }
    await tx
      .insertInto('model_versions')
      .values({
        model: name,
        version,
        security_version: securityVersion,
        spec: JSON.stringify(spec),
        files: JSON.stringify(fileInfo),
        bundle_sha256: stored.sha256,
        bundle_length: stored.length,
        target,
        created_at: now,
      })
      .execute();
    await audit(tx, now, {
      actor,
      action: 'model.upload',
      target: `${name}@${version}`,
      details: { sha256: stored.sha256, securityVersion },
    });
  });
  return {
    model: name,
    version,
    securityVersion,
    target,
    sha256: stored.sha256,
    length: stored.length,
    files: fileInfo,
    spec,
    createdAt: now,
  };
}
