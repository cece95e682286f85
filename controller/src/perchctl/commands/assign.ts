import type { Command } from 'commander';
import { readConfigFile } from '@perch/shared';
import type { ApiClient } from '../client';
import type { CommandContext } from '../context';
import type { DeviceView } from './devices';
import { idArg, usage, type Runner } from './args';

interface Desired {
  rev?: number;
  models?: Array<{ name: string; version: string }>;
  pipelines?: unknown[];
  config?: Record<string, unknown>;
}

/** `name@version` -> parts. */
export function parseModelRef(ref: string): { name: string; version: string } {
  const at = ref.lastIndexOf('@');
  if (at <= 0 || at === ref.length - 1)
    throw usage(`model must be written name@version (got ${JSON.stringify(ref)})`);
  return { name: idArg(ref.slice(0, at), 'model name'), version: ref.slice(at + 1) };
}

async function currentDesired(client: ApiClient, id: string): Promise<Desired> {
  const d = await client.get<{ desired?: Desired | null }>(`/devices/${id}`);
  return d.desired ?? {};
}

/**
 * Puts a model version into a device's desired state, replacing another version of the same model
 * and keeping everything else; `--pipelines` replaces the pipeline list from a JSON or YAML file.
 */
export function registerAssign(program: Command, run: Runner): void {
  program
    .command('assign <device-or-model> [model]')
    .description('assign <model>@<version> to a device, or to every device with --tag')
    .option('--tag <tag>', 'every (non-revoked) device with this tag')
    .option('--pipelines <file>', 'JSON or YAML file with {"pipelines": [...]} to set as well')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          deviceOrModel: string,
          maybeModel: string | undefined,
          opts: { tag?: string; pipelines?: string },
        ) => {
          // `assign <device> <model>@<version>` or `assign --tag T <model>@<version>`.
          let device: string | undefined = deviceOrModel;
          let modelRef = maybeModel;
          if (modelRef === undefined) {
            modelRef = deviceOrModel;
            device = undefined;
          }
          if (!modelRef) throw usage('name the model as <model>@<version>');
          if ((device === undefined) === (opts.tag === undefined))
            throw usage('give either a device id or --tag, not both');
          const model = parseModelRef(modelRef);
          let pipelines: unknown[] | undefined;
          if (opts.pipelines) {
            const doc = readConfigFile(opts.pipelines);
            if (!Array.isArray(doc.pipelines))
              throw usage(`${opts.pipelines} must hold {"pipelines": [...]}`);
            pipelines = doc.pipelines;
          }
          const api = client();
          const targets =
            device !== undefined
              ? [idArg(device, 'device id')]
              : (
                  await api.get<{ devices: DeviceView[] }>('/devices', { tag: idArg(opts.tag, '--tag') })
                ).devices.map((d) => d.id);
          if (targets.length === 0) throw usage(`no device has the tag ${opts.tag}`);
          const results: Array<{ device: string; rev: number; published: boolean }> = [];
          for (const id of targets) {
            const desired = await currentDesired(api, id);
            const models = (desired.models ?? [])
              .filter((m) => m.name !== model.name)
              .map((m) => ({ name: m.name, version: m.version }));
            models.push(model);
            const body = {
              models,
              pipelines: pipelines ?? desired.pipelines ?? [],
              ...(desired.config ? { config: desired.config } : {}),
            };
            const res = await api.put<{ desired: { rev: number }; published: boolean }>(
              `/devices/${id}/desired`,
              body,
            );
            results.push({ device: id, rev: res.desired.rev, published: res.published });
            out.say(
              `${id}: ${model.name}@${model.version} (desired rev ${res.desired.rev}${res.published ? '' : ', not yet published'})`,
            );
          }
          if (out.json) out.data({ assigned: results });
        },
      ),
    );
}
