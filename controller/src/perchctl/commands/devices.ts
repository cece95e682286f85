import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { idArg, tagsArg, usage, type Runner } from './args';

export interface DeviceView {
  id: string;
  hostname?: string | null;
  tags: string[];
  online: boolean;
  lastSeenAt?: number | null;
  enrolledAt: number;
  revokedAt?: number | null;
  activeModels?: Array<{ name: string; version: string }>;
}

interface DeviceDetail extends DeviceView {
  reported?: {
    models?: Array<{ name: string; version: string; state: string; error?: { code: string } }>;
  } | null;
  desired?: {
    rev?: number;
    models?: Array<{ name: string; version: string }>;
    pipelines?: Array<{ id: string }>;
  } | null;
}

export function registerDevices(program: Command, run: Runner): void {
  const cmd = program.command('devices').description('enrolled devices');

  cmd
    .command('ls', { isDefault: true })
    .description('list devices')
    .option('--tag <tag>', 'only devices with this tag')
    .option('--online', 'only devices that are online')
    .option('--revoked', 'list revoked devices instead')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          opts: { tag?: string; online?: boolean; revoked?: boolean },
        ) => {
          const { devices } = await client().get<{ devices: DeviceView[] }>('/devices', {
            tag: opts.tag === undefined ? undefined : idArg(opts.tag, '--tag'),
            online: opts.online ? true : undefined,
            revoked: opts.revoked ? true : undefined,
          });
          out.table(
            devices,
            [
              ['ID', (d) => d.id],
              ['ONLINE', (d) => (d.online ? 'yes' : 'no')],
              ['TAGS', (d) => d.tags],
              ['MODELS', (d) => (d.activeModels ?? []).map((m) => `${m.name}@${m.version}`)],
              ['HOSTNAME', (d) => d.hostname],
              ['LAST SEEN', (d) => formatTime(d.lastSeenAt)],
              ['ENROLLED', (d) => formatTime(d.enrolledAt)],
            ],
            { devices },
          );
        },
      ),
    );

  cmd
    .command('show <id>')
    .description('one device: status, tags, desired and reported models')
    .action(
      run(async ({ client, out }: CommandContext, rawId: string) => {
        const id = idArg(rawId, 'device id');
        const d = await client().get<DeviceDetail>(`/devices/${id}`);
        if (out.json) {
          out.data(d);
          return;
        }
        out.record({
          id: d.id,
          online: d.online ? 'yes' : 'no',
          hostname: d.hostname,
          tags: d.tags,
          lastSeen: formatTime(d.lastSeenAt),
          enrolled: formatTime(d.enrolledAt),
          revoked: formatTime(d.revokedAt),
          desiredRev: d.desired?.rev,
          desired: (d.desired?.models ?? []).map((m) => `${m.name}@${m.version}`),
          pipelines: (d.desired?.pipelines ?? []).map((p) => p.id),
          reported: (d.reported?.models ?? []).map(
            (m) => `${m.name}@${m.version} ${m.state}${m.error ? ` (${m.error.code})` : ''}`,
          ),
        });
      }),
    );

  cmd
    .command('tag <id> [tags...]')
    .description('set the tags of a device (or change them with --add / --remove)')
    .option('--add <a,b>', 'tags to add')
    .option('--remove <a,b>', 'tags to remove')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          rawId: string,
          tags: string[],
          opts: { add?: string; remove?: string },
        ) => {
          const id = idArg(rawId, 'device id');
          let next: string[];
          if (opts.add !== undefined || opts.remove !== undefined) {
            if (tags.length) throw usage('give either a full tag list or --add/--remove, not both');
            const current = await client().get<DeviceView>(`/devices/${id}`);
            const add = tagsArg(opts.add) ?? [];
            const remove = new Set(tagsArg(opts.remove) ?? []);
            next = [...new Set([...current.tags, ...add])].filter((t) => !remove.has(t));
          } else {
            next = tagsArg(tags.join(',')) ?? [];
          }
          const d = await client().put<DeviceView>(`/devices/${id}/tags`, { tags: next });
          out.say(`${d.id}: tags ${d.tags.length ? d.tags.join(', ') : '(none)'}`);
          if (out.json) out.data(d);
        },
      ),
    );

  cmd
    .command('revoke <id>')
    .description('revoke a device: its MQTT session, API access and downloads are cut off')
    .action(
      run(async ({ client, out }: CommandContext, rawId: string) => {
        const id = idArg(rawId, 'device id');
        const result = await client().post<unknown>(`/devices/${id}/revoke`);
        out.say(`revoked device ${id}`);
        if (out.json) out.data(result ?? { id, revoked: true });
      }),
    );
}
