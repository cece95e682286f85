import path from 'node:path';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { PerchError } from '@perch/shared';
import type { AppDeps } from '../context';
import { security } from '../http/schemas';
import { sendFile } from '../http/range';
import { METADATA_FILE } from '../tuf/repository';

const TARGET_FILE =
  /^(?<dir>(?:[A-Za-z0-9._+-]+\/){0,8})(?<hash>[0-9a-f]{64})\.(?<base>[A-Za-z0-9._+-]{1,128})$/;

/**
 * The TUF repository over HTTP. Devices authenticate with their device token (revoked devices are
 * refused by the auth hook); operators may read too. Artifacts support Range and ETag.
 */
export const tufRoutes: FastifyPluginAsync<AppDeps> = async (app, { tuf, artifacts }) => {
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
          'A signed artifact by consistent-snapshot name <dir>/<sha256>.<name>; supports Range and ETag',
        tags: ['tuf'],
        security: security(['device', 'operator']),
      },
    },
    async (request, reply) => {
      const m = TARGET_FILE.exec(request.params['*'] ?? '');
      if (!m?.groups) throw new PerchError('E_NOT_FOUND', 'no such target');
      const { dir = '', hash = '', base = '' } = m.groups;
      const target = tuf.findTarget(`${dir}${base}`, hash);
      const stat = target ? await artifacts.stat(hash) : undefined;
      if (!target || !stat) throw new PerchError('E_NOT_FOUND', 'no such target');
      reply.header('Cache-Control', 'private, max-age=31536000, immutable');
      return sendFile(request, reply, artifacts.pathOf(hash), stat.size, hash, 'application/octet-stream');
    },
  );
};
