import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { UploadPart } from '../client';
import type { CommandContext } from '../context';
import { CliFailure, EXIT } from '../failure';
import { formatTime, progressBar } from '../output';
import { idArg, intArg, usage, type Runner } from './args';

interface VersionView {
  model: string;
  version: string;
  securityVersion: number;
  target: string;
  sha256: string;
  length: number;
  createdAt: number;
}

const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/** The files of a bundle folder: model.onnx, spec.json, labels.txt and an optional sample.bin. */
export function bundleParts(dir: string): UploadPart[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    throw new CliFailure(
      'E_CLI_BUNDLE',
      `cannot read bundle folder ${dir}: ${(err as Error).message}`,
      EXIT.usage,
    );
  }
  const parts: UploadPart[] = [];
  for (const [field, file] of [
    ['model', 'model.onnx'],
    ['spec', 'spec.json'],
    ['labels', 'labels.txt'],
  ] as const) {
    if (!entries.includes(file)) throw new CliFailure('E_CLI_BUNDLE', `${dir} has no ${file}`, EXIT.usage);
    parts.push({ name: field, file: path.join(dir, file) });
  }
  // The self-test sample is the model's input tensor as raw bytes, not a picture: another sample.*
  // is a mistake better named here than refused by the controller after the upload.
  const other = entries.find((e) => /^sample\./.test(e) && e !== 'sample.bin');
  if (other)
    throw new CliFailure(
      'E_CLI_BUNDLE',
      `${dir}/${other}: the sample must be sample.bin, the raw bytes of the model's input tensor (batch 1, the spec's layout and dtype; see controller/README.md)`,
      EXIT.usage,
    );
  if (entries.includes('sample.bin')) parts.push({ name: 'sample', file: path.join(dir, 'sample.bin') });
  return parts;
}

export function registerModels(program: Command, run: Runner): void {
  const cmd = program.command('models').description('the model registry');

  cmd
    .command('push <bundle-dir>')
    .description(
      'upload a bundle folder (model.onnx, spec.json, labels.txt, optional sample.bin) as a new version',
    )
    .requiredOption('--name <name>', 'model name')
    .requiredOption('--version <version>', 'version label (immutable once pushed)')
    .option('--security-version <n>', 'security version; never lower than the current one')
    .option('--no-progress', 'do not show the upload progress')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          dir: string,
          opts: { name: string; version: string; securityVersion?: string; progress: boolean },
        ) => {
          const name = idArg(opts.name, '--name');
          if (!VERSION_PATTERN.test(opts.version))
            throw usage('--version must be letters, digits and . _ + - (max 64)');
          const parts = bundleParts(dir);
          const sv = intArg(opts.securityVersion, '--security-version', 0, 2 ** 31 - 1);
          if (sv !== undefined) parts.unshift({ name: 'securityVersion', value: String(sv) });
          const onProgress = opts.progress
            ? progressBar(out.stderr, `uploading ${name}@${opts.version}`)
            : undefined;
          const v = await client().upload<VersionView>(
            `/models/${name}/versions/${encodeURIComponent(opts.version)}`,
            parts,
            onProgress,
          );
          out.say(
            `pushed ${v.model}@${v.version} (security version ${v.securityVersion}, ${v.length} bytes, sha256 ${v.sha256})`,
          );
          if (out.json) out.data(v);
        },
      ),
    );

  cmd
    .command('ls', { isDefault: true })
    .description('list models')
    .action(
      run(async ({ client, out }: CommandContext) => {
        const { models } = await client().get<{
          models: Array<{ name: string; securityVersion: number; versions: string[]; createdAt: number }>;
        }>('/models');
        out.table(
          models,
          [
            ['NAME', (m) => m.name],
            ['VERSIONS', (m) => m.versions],
            ['SECURITY VERSION', (m) => m.securityVersion],
            ['CREATED', (m) => formatTime(m.createdAt)],
          ],
          { models },
        );
      }),
    );

  cmd
    .command('show <name>')
    .description('a model and its versions')
    .action(
      run(async ({ client, out }: CommandContext, rawName: string) => {
        const name = idArg(rawName, 'model name');
        const m = await client().get<{ name: string; securityVersion: number; versions: VersionView[] }>(
          `/models/${name}`,
        );
        if (out.json) {
          out.data(m);
          return;
        }
        out.say(`${m.name} (security version ${m.securityVersion})`);
        out.table(m.versions, [
          ['VERSION', (v) => v.version],
          ['SECURITY', (v) => v.securityVersion],
          ['BYTES', (v) => v.length],
          ['SHA256', (v) => v.sha256.slice(0, 16)],
          ['CREATED', (v) => formatTime(v.createdAt)],
        ]);
      }),
    );
}
