import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { durationArg, idArg, intArg, tagsArg, type Runner } from './args';

interface EnrollTokenView {
  id: string;
  name: string;
  expiresAt: number;
  maxUses: number;
  uses: number;
  tags: string[];
  createdAt: number;
  revokedAt?: number | null;
  token?: string;
}

export function registerEnrollTokens(program: Command, run: Runner): void {
  const cmd = program.command('enroll-tokens').description('bootstrap tokens that let devices enroll');

  cmd
    .command('create')
    .description('create an enrollment token; its secret is printed once')
    .option('--name <name>', 'a label for the token')
    .option('--ttl <duration>', 'how long it is valid: 90, 30s, 15m, 2h, 7d', '1h')
    .option('--max-uses <n>', 'how many devices may enroll with it', '1')
    .option('--tags <a,b>', 'tags given to every device it enrolls')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          opts: { name?: string; ttl: string; maxUses: string; tags?: string },
        ) => {
          const body = {
            ...(opts.name ? { name: opts.name } : {}),
            ttlSeconds: durationArg(opts.ttl, '--ttl'),
            maxUses: intArg(opts.maxUses, '--max-uses', 1, 100_000),
            ...(opts.tags ? { tags: tagsArg(opts.tags) } : {}),
          };
          const t = await client().post<EnrollTokenView>('/enroll-tokens', body);
          out.record({
            id: t.id,
            name: t.name,
            expires: formatTime(t.expiresAt),
            maxUses: t.maxUses,
            tags: t.tags,
            token: t.token,
          });
          out.say('Give the token to the device (PERCH_ENROLL_TOKEN); it is not shown again.');
        },
      ),
    );

  cmd
    .command('ls', { isDefault: true })
    .description('list enrollment tokens')
    .action(
      run(async ({ client, out }: CommandContext) => {
        const { enrollTokens } = await client().get<{ enrollTokens: EnrollTokenView[] }>('/enroll-tokens');
        out.table(
          enrollTokens,
          [
            ['ID', (t) => t.id],
            ['NAME', (t) => t.name],
            ['USES', (t) => `${t.uses}/${t.maxUses}`],
            ['TAGS', (t) => t.tags],
            ['EXPIRES', (t) => formatTime(t.expiresAt)],
            ['REVOKED', (t) => formatTime(t.revokedAt)],
          ],
          { enrollTokens },
        );
      }),
    );

  cmd
    .command('revoke <id>')
    .description('revoke an enrollment token')
    .action(
      run(async ({ client, out }: CommandContext, rawId: string) => {
        const id = idArg(rawId, 'enrollment token id');
        await client().delete(`/enroll-tokens/${id}`);
        out.say(`revoked enrollment token ${id}`);
        if (out.json) out.data({ id, revoked: true });
      }),
    );
}
