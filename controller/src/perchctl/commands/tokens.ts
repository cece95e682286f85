import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { idArg, oneOf, type Runner } from './args';

interface TokenView {
  id: string;
  name: string;
  role: string;
  createdAt: number;
  revokedAt?: number | null;
  lastUsedAt?: number | null;
  token?: string;
}

export function registerTokens(program: Command, run: Runner): void {
  const tokens = program.command('tokens').description('operator API tokens (admin)');

  tokens
    .command('ls', { isDefault: true })
    .description('list tokens')
    .action(
      run(async ({ client, out }) => {
        const { tokens: rows } = await client().get<{ tokens: TokenView[] }>('/tokens');
        out.table(
          rows,
          [
            ['ID', (t) => t.id],
            ['NAME', (t) => t.name],
            ['ROLE', (t) => t.role],
            ['CREATED', (t) => formatTime(t.createdAt)],
            ['LAST USED', (t) => formatTime(t.lastUsedAt)],
            ['REVOKED', (t) => formatTime(t.revokedAt)],
          ],
          { tokens: rows },
        );
      }),
    );

  tokens
    .command('create')
    .description('create a token; its secret is printed once')
    .requiredOption('--name <name>', 'what the token is for')
    .option('--role <role>', 'viewer, operator or admin', 'viewer')
    .action(
      run(async ({ client, out }: CommandContext, opts: { name: string; role: string }) => {
        const role = oneOf(opts.role, ['viewer', 'operator', 'admin'], '--role');
        const created = await client().post<TokenView>('/tokens', { name: opts.name, role });
        out.record({ id: created.id, name: created.name, role: created.role, token: created.token });
        out.say('Store the token now: it is not shown again.');
      }),
    );

  tokens
    .command('revoke <id>')
    .description('revoke a token')
    .action(
      run(async ({ client, out }: CommandContext, rawId: string) => {
        const id = idArg(rawId, 'token id');
        await client().delete(`/tokens/${id}`);
        out.say(`revoked token ${id}`);
        if (out.json) out.data({ id, revoked: true });
      }),
    );
}
