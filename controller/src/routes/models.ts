import type { FastifyPluginAsync } from 'fastify';
import multipart from '@fastify/multipart';
import { PerchError, isValidId } from '@perch/shared';
import type { AppDeps } from '../context';
import { actorOf } from '../auth/authenticate';
import { idParam, security, withErrors } from '../http/schemas';
import { sendFile } from '../http/range';
import { publishBundle, type BundleFiles } from '../models/publish';
import type { ModelVersionTable } from '../db/schema';

const VERSION = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$';
const versionParam = { type: 'string', pattern: VERSION } as const;

const versionView = {
  type: 'object',
  required: ['model', 'version', 'securityVersion', 'target', 'sha256', 'length', 'createdAt'],
  properties: {
    model: { type: 'string' },
    version: { type: 'string' },
    securityVersion: { type: 'integer' },
    target: { type: 'string' },
    sha256: { type: 'string' },
    length: { type: 'integer' },
    files: { type: 'object', additionalProperties: true },
    spec: { type: 'object', additionalProperties: true },
    createdAt: { type: 'integer' },
  },
} as const;

function toView(r: ModelVersionTable) {
  return {
    model: r.model,
    version: r.version,
    securityVersion: r.security_version,
    target: r.target,
    sha256: r.bundle_sha256,
    length: Number(r.bundle_length),
    files: JSON.parse(r.files) as unknown,
    spec: JSON.parse(r.spec) as unknown,
    createdAt: r.created_at,
  };
}

const PART_NAMES: Record<string, keyof BundleFiles> = {
  model: 'model',
  'model.onnx': 'model',
  spec: 'spec',
  'spec.json': 'spec',
  labels: 'labels',
  'labels.txt': 'labels',
  sample: 'sample',
};

/** Model bundles: upload (multipart), list, get, download. */
export const modelRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, settings, artifacts } = deps;
  await app.register(multipart, {
    limits: {
      fileSize: settings.modelLimitBytes,
      files: 4,
      fields: 2,
      parts: 6,
      fieldSize: 64,
      headerPairs: 50,
    },
    throwFileSizeLimit: true,
  });

  app.post<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version',
    {
      config: { access: 'operator' },
      bodyLimit: settings.modelLimitBytes + 3 * settings.sideFileLimitBytes + 64 * 1024,
      schema: {
        summary:
          'Upload a model bundle (multipart: model.onnx, spec.json, labels.txt, optional sample (the raw bytes of the spec input tensor; checked by size and one inference), optional securityVersion field)',
        tags: ['models'],
        security: security('operator'),
        consumes: ['multipart/form-data'],
        params: {
          type: 'object',
          required: ['name', 'version'],
          properties: { name: idParam, version: versionParam },
        },
        response: withErrors({ 201: versionView }),
      },
    },
    async (request, reply) => {
      if (!request.isMultipart())
        throw new PerchError('E_HTTP_BAD_REQUEST', 'upload must be multipart/form-data');
      const files: Partial<BundleFiles> = {};
      let securityVersion: number | undefined;
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (part.fieldname !== 'securityVersion')
            throw new PerchError('E_MODEL_BUNDLE_INCOMPLETE', `unknown field ${part.fieldname.slice(0, 64)}`);
          const n = Number(part.value);
          if (!Number.isSafeInteger(n) || n < 0)
            throw new PerchError('E_SCHEMA', 'securityVersion must be a non-negative integer');
          securityVersion = n;
          continue;
        }
        const key = PART_NAMES[part.fieldname];
        if (!key || files[key]) {
          part.file.resume();
          throw new PerchError(
            'E_MODEL_BUNDLE_INCOMPLETE',
            `unexpected or repeated file part ${part.fieldname.slice(0, 64)}`,
          );
        }
        const data = await part.toBuffer();
        if (key !== 'model' && data.length > settings.sideFileLimitBytes) {
          throw new PerchError(
            'E_MODEL_TOO_LARGE',
            `${part.fieldname} is larger than ${settings.sideFileLimitBytes} bytes`,
          );
        }
        files[key] = data;
      }
      if (!files.model || !files.spec || !files.labels) {
        throw new PerchError(
          'E_MODEL_BUNDLE_INCOMPLETE',
          'model.onnx, spec.json and labels.txt are required',
        );
      }
      const published = await publishBundle(
        deps,
        request.params.name,
        request.params.version,
        files as BundleFiles,
        securityVersion,
        actorOf(request.principal),
      );
      return reply.code(201).send(published);
    },
  );

  app.get(
    '/models',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'List models',
        tags: ['models'],
        security: security('viewer'),
        response: withErrors({
          200: {
            type: 'object',
            required: ['models'],
            properties: {
              models: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    securityVersion: { type: 'integer' },
                    versions: { type: 'array', items: { type: 'string' } },
                    createdAt: { type: 'integer' },
                  },
                },
              },
            },
          },
        }),
      },
    },
    async () => {
      const models = await store.db.selectFrom('models').selectAll().orderBy('name').execute();
      const versions = await store.db
        .selectFrom('model_versions')
        .select(['model', 'version'])
        .orderBy('created_at')
        .execute();
      return {
        models: models.map((m) => ({
          name: m.name,
          securityVersion: m.security_version,
          createdAt: m.created_at,
          versions: versions.filter((v) => v.model === m.name).map((v) => v.version),
        })),
      };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/models/:name',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Get a model and its versions',
        tags: ['models'],
        security: security('viewer'),
        params: { type: 'object', required: ['name'], properties: { name: idParam } },
        response: withErrors({
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              securityVersion: { type: 'integer' },
              versions: { type: 'array', items: versionView },
            },
          },
        }),
      },
    },
    async (request) => {
      const m = await store.db
        .selectFrom('models')
        .selectAll()
        .where('name', '=', request.params.name)
        .executeTakeFirst();
      if (!m) throw new PerchError('E_NOT_FOUND', `no model ${request.params.name}`);
      const rows = await store.db
        .selectFrom('model_versions')
        .selectAll()
        .where('model', '=', m.name)
        .orderBy('created_at')
        .execute();
      return { name: m.name, securityVersion: m.security_version, versions: rows.map(toView) };
    },
  );

  async function loadVersion(name: string, version: string): Promise<ModelVersionTable> {
    if (!isValidId(name)) throw new PerchError('E_NOT_FOUND', 'no such model');
    const r = await store.db
      .selectFrom('model_versions')
      .selectAll()
      .where('model', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!r) throw new PerchError('E_NOT_FOUND', `no model version ${name}@${version}`);
    return r;
  }

  const versionParams = {
    type: 'object',
    required: ['name', 'version'],
    properties: { name: idParam, version: versionParam },
  } as const;

  app.get<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Get a model version',
        tags: ['models'],
        security: security('viewer'),
        params: versionParams,
        response: withErrors({ 200: versionView }),
      },
    },
    async (request) => toView(await loadVersion(request.params.name, request.params.version)),
  );

  app.get<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version/bundle',
    {
      config: { access: 'operator' },
      schema: {
        summary:
          'Download the bundle (tar of model.onnx, spec.json, labels.txt[, sample.bin]); supports Range and ETag',
        tags: ['models'],
        security: security('operator'),
        params: versionParams,
      },
    },
    async (request, reply) => {
      const r = await loadVersion(request.params.name, request.params.version);
      const stat = await artifacts.stat(r.bundle_sha256);
      if (!stat) throw new PerchError('E_NOT_FOUND', 'bundle file is missing');
      return sendFile(
        request,
        reply,
        artifacts.pathOf(r.bundle_sha256),
        stat.size,
        r.bundle_sha256,
        'application/x-tar',
      );
    },
  );
};
