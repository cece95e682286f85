import path from 'node:path';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { PerchError } from '@perch/shared';
import type { AppDeps } from '../context';
import type { Store } from '../db/open';
import { security } from '../http/schemas';
import { sendFile } from '../http/range';
import { METADATA_FILE } from '../tuf/repository';

const TARGET_FILE =
  /^(?<dir>(?:[A-Za-z0-9._+-]+\/){0,8})(?<hash>[0-9a-f]{64})\.(?<base>[A-Za-z0-9._+-]{1,128})$/;

/**
 * Whether `target` (TUF path) with `sha256` is named by the device's current desired state. Only the
 * current revision counts: the agent downloads nothing but the models of the desired state it holds
 * (rollback uses the previous version it keeps on disk), and its revision never runs ahead of the
 * stored one, which is written before it is published.
 */
export async function targetAssigned(
  store: Store,
  deviceId: string,
  target: string,
  sha256: string,
): Promise<boolean> {
  const row = await store.db
    .selectFrom('desired')
    .select('doc')
    .where('device_id', '=', deviceId)
    .executeTakeFirst();
  if (!row) return false;
  let models: unknown;
  try {
    models = (JSON.parse(row.doc) as { models?: unknown }).models;
  } catch {
    return false;
  }
  if (!Array.isArray(models)) return false;
  return models.some((m: unknown) => {
    const model = m as { target?: unknown; sha256?: unknown } | null;
    return model?.target === target && model.sha256 === sha256;
  });
}

/**
 * The TUF repository over HTTP. Devices authenticate with their device token (revoked devices are
 * refused by the auth hook); operators may read too. Metadata is readable by every enrolled device;
 * an artifact only by the devices whose current desired state names it (E_TARGET_NOT_ASSIGNED), and by
 * operators. Artifacts support Range and ETag.
 */
export const tufRoutes: FastifyPluginAsync<AppDeps> = async (app, { tuf, artifacts, store, logger }) => {
  app.get<{ Params: { file: string } }>(
    '/metadata/:file',
    {
      config: { access: ['device', 'viewer'] },
      schema: {
        summary: 'TUF metadata (N.root.json, timestamp.json, N.snapshot.json, N.targets.json)',
        tags: ['tuf'],
        security: security(['device', 'viewer']),
        params: {
          type: 'object',
          required: ['file'],
          properties: { file: { type: 'string', maxLength: 64 } },
        },
      },
    },
    async (request, reply) => {
      const name = request.params.file;
      if (!METADATA_FILE.test(name)) throw new PerchError('E_NOT_FOUND', 'no such metadata');
      const file = path.join(tuf.metadataDir, name);
      let data: Buffer;
      try {
        data = await fs.readFile(file);
      } catch {
        throw new PerchError('E_NOT_FOUND', `no metadata ${name}`);
      }
      const etag = createHash('sha256').update(data).digest('hex');
      reply.header('Cache-Control', 'no-cache');
      return sendFile(request, reply, file, data.length, etag, 'application/json');
    },
  );

  app.get<{ Params: { '*': string } }>(
    '/targets/*',
    {
      config: { access: ['device', 'operator'] },
      schema: {
        summary:
          'A signed artifact by consistent-snapshot name <dir>/<sha256>.<name>; supports Range and ETag. Devices may fetch only the targets of their current desired state (403 E_TARGET_NOT_ASSIGNED)',
        tags: ['tuf'],
        security: security(['device', 'operator']),
      },
    },
    async (request, reply) => {
      const m = TARGET_FILE.exec(request.params['*'] ?? '');
      if (!m?.groups) throw new PerchError('E_NOT_FOUND', 'no such target');
      const { dir = '', hash = '', base = '' } = m.groups;
      const principal = request.principal;
      // Checked before existence, so that a device cannot probe which artifacts the registry holds.
      if (principal?.kind === 'device') {
        if (!(await targetAssigned(store, principal.deviceId, `${dir}${base}`, hash))) {
          (request.logger ?? logger).warn('target download refused: not assigned to the device', {
            code: 'E_TARGET_NOT_ASSIGNED',
            deviceId: principal.deviceId,
            target: `${dir}${base}`,
            sha256: hash,
          });
          throw new PerchError(
            'E_TARGET_NOT_ASSIGNED',
            'this target is not in the desired state of the device',
          );
        }
      }
      const target = tuf.findTarget(`${dir}${base}`, hash);
      const stat = target ? await artifacts.stat(hash) : undefined;
      if (!target || !stat) throw new PerchError('E_NOT_FOUND', 'no such target');
      reply.header('Cache-Control', 'private, max-age=31536000, immutable');
      return sendFile(request, reply, artifacts.pathOf(hash), stat.size, hash, 'application/octet-stream');
    },
  );
};
