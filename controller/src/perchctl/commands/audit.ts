import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { idArg, intArg, timeArg, type Runner } from './args';

export interface AuditEntryView {
  id: string;
  ts: number;
  actor: string;
  action: string;
  target: string;
  details: unknown;
}

interface AuditPage {
  entries: AuditEntryView[];
  nextCursor: string | null;
}

interface AuditOptions {
  device?: string;
  action?: string;
  actor?: string;
  target?: string;
  since?: string;
  until?: string;
  limit: string;
}

/** The server's page size; `--limit` above it is fetched page by page. */
const PAGE = 1000;

export function registerAudit(program: Command, run: Runner): void {
  const cmd = program.command('audit').description('the audit log (admin)');

  cmd
    .command('ls', { isDefault: true })
    .description('audit entries, newest first')
    .option('--device <id>', 'only entries about this device (enrollment, revocation, tags, desired state)')
    .option('--action <action>', 'only this action, e.g. device.revoke or token.create')
    .option('--actor <actor>', 'only this actor, e.g. token:<id>')
    .option('--target <target>', 'only this target (a device, token or webhook id, or model@version)')
    .option('--since <time>', 'from this time (ISO 8601, epoch ms, or -1h)')
    .option('--until <time>', 'up to this time (ISO 8601, epoch ms, or -1h)')
    .option('--limit <n>', 'at most this many', '50')
    .action(
      run(async ({ client, out }: CommandContext, opts: AuditOptions) => {
        const api = client();
        const limit = intArg(opts.limit, '--limit', 1, 100_000) ?? 50;
        const filters = {
          device: opts.device === undefined ? undefined : idArg(opts.device, '--device'),
          action: opts.action,
          actor: opts.actor,
          target: opts.target,
          from: timeArg(opts.since, '--since'),
          to: timeArg(opts.until, '--until'),
        };
        const entries: AuditEntryView[] = [];
        let cursor: string | undefined;
        do {
          const page = await api.get<AuditPage>('/audit', {
            ...filters,
            limit: Math.min(PAGE, limit - entries.length),
            cursor,
          });
          entries.push(...page.entries);
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined && entries.length < limit);
        out.table(
          entries,
          [
            ['TIME', (e) => formatTime(e.ts)],
            ['ACTOR', (e) => e.actor],
            ['ACTION', (e) => e.action],
            ['TARGET', (e) => e.target],
            ['DETAILS', (e) => (e.details === null ? undefined : JSON.stringify(e.details))],
          ],
          { entries },
        );
      }),
    );
}
