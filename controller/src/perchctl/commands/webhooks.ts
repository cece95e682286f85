import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { idArg, intArg, oneOf, tagsArg, usage, type Runner } from './args';

interface WebhookView {
  id: string;
  url: string;
  filter: { devices?: string[]; tags?: string[]; labels?: string[]; phases?: string[] };
  enabled: boolean;
  description?: string;
  createdAt: number;
  secret?: string;
}

interface DeadLetterView {
  id: string;
  subscriptionId: string;
  createdAt: number;
  attempts: number;
  lastError?: string;
  lastStatus?: number;
  deadAt?: number;
  body: { deviceId?: string; event?: { id?: string; label?: string } };
}

function listArg(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

function filterText(f: WebhookView['filter']): string {
  const parts = (['devices', 'tags', 'labels', 'phases'] as const)
    .filter((k) => f[k]?.length)
    .map((k) => `${k}=${(f[k] ?? []).join(',')}`);
  return parts.length ? parts.join(' ') : 'all events';
}

export function registerWebhooks(program: Command, run: Runner): void {
  const webhooks = program.command('webhooks').description('signed HTTP deliveries of device events');

  webhooks
    .command('ls', { isDefault: true })
    .description('list webhook subscriptions (operator)')
    .action(
      run(async ({ client, out }) => {
        const res = await client().get<{ webhooks: WebhookView[]; pending: number }>('/webhooks');
        out.table(
          res.webhooks,
          [
            ['ID', (w) => w.id],
            ['URL', (w) => w.url],
            ['FILTER', (w) => filterText(w.filter)],
            ['ENABLED', (w) => (w.enabled ? 'yes' : 'no')],
            ['CREATED', (w) => formatTime(w.createdAt)],
            ['DESCRIPTION', (w) => w.description],
          ],
          res,
        );
        out.say(`${res.pending} deliveries pending`);
      }),
    );

  webhooks
    .command('add <url>')
    .description('subscribe a URL to device events (admin); the signing secret is printed once')
    .option('--device <ids>', 'only these devices (comma-separated)')
    .option('--tag <tags>', 'only devices with one of these tags (comma-separated)')
    .option('--label <labels>', 'only events with one of these labels (comma-separated)')
    .option('--phase <phases>', 'only these phases: start, update, end (comma-separated)')
    .option('--secret <secret>', 'use this secret (at least 32 characters) instead of a generated one')
    .option('--description <text>', 'what the webhook is for')
    .option('--disabled', 'create it disabled')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          url: string,
          opts: {
            device?: string;
            tag?: string;
            label?: string;
            phase?: string;
            secret?: string;
            description?: string;
            disabled?: boolean;
          },
        ) => {
          if (!/^https?:\/\//i.test(url)) throw usage('the webhook URL must start with http:// or https://');
          const devices = listArg(opts.device)?.map((d) => idArg(d, 'device id'));
          const phases = listArg(opts.phase)?.map((p) => oneOf(p, ['start', 'update', 'end'], '--phase'));
          const filter = {
            ...(devices ? { devices } : {}),
            ...(opts.tag !== undefined ? { tags: tagsArg(opts.tag) } : {}),
            ...(listArg(opts.label) ? { labels: listArg(opts.label) } : {}),
            ...(phases ? { phases } : {}),
          };
          const created = await client().post<WebhookView>('/webhooks', {
            url,
            filter,
            ...(opts.secret !== undefined ? { secret: opts.secret } : {}),
            ...(opts.description !== undefined ? { description: opts.description } : {}),
            ...(opts.disabled ? { enabled: false } : {}),
          });
          out.record({
            id: created.id,
            url: created.url,
            filter: filterText(created.filter),
            secret: created.secret,
          });
          out.say(
            'Store the secret now: it is not shown again. Receivers verify the Perch-Signature header with it.',
          );
        },
      ),
    );

  webhooks
    .command('rm <id>')
    .description('delete a webhook subscription (admin); its queued deliveries become dead letters')
    .action(
      run(async ({ client, out }: CommandContext, rawId: string) => {
        const id = idArg(rawId, 'webhook id');
        await client().delete(`/webhooks/${id}`);
        out.say(`deleted webhook ${id}`);
        if (out.json) out.data({ id, deleted: true });
      }),
    );

  webhooks
    .command('dead-letters [id]')
    .description('deliveries that failed every attempt, of one webhook or all (operator)')
    .option('--limit <n>', 'at most this many, newest first', '100')
    .option('--redeliver <deliveryId>', 'put this dead letter back in the queue')
    .option('--discard <deliveryId>', 'drop this dead letter (handled elsewhere)')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          rawId: string | undefined,
          opts: { limit: string; redeliver?: string; discard?: string },
        ) => {
          if (opts.redeliver !== undefined) {
            const id = idArg(opts.redeliver, 'delivery id');
            await client().post(`/webhooks/dead-letters/${id}/redeliver`);
            out.say(`queued ${id} again`);
            if (out.json) out.data({ id, status: 'pending' });
            return;
          }
          if (opts.discard !== undefined) {
            const id = idArg(opts.discard, 'delivery id');
            await client().delete(`/webhooks/dead-letters/${id}`);
            out.say(`discarded ${id}`);
            if (out.json) out.data({ id, discarded: true });
            return;
          }
          const limit = intArg(opts.limit, '--limit', 1, 1000);
          const path =
            rawId === undefined
              ? '/webhooks/dead-letters'
              : `/webhooks/${idArg(rawId, 'webhook id')}/dead-letters`;
          const res = await client().get<{ deadLetters: DeadLetterView[] }>(path, { limit });
          out.table(
            res.deadLetters,
            [
              ['ID', (d) => d.id],
              ['WEBHOOK', (d) => d.subscriptionId],
              ['DEVICE', (d) => d.body.deviceId],
              ['EVENT', (d) => d.body.event?.id],
              ['LABEL', (d) => d.body.event?.label],
              ['ATTEMPTS', (d) => d.attempts],
              ['LAST ERROR', (d) => d.lastError],
              ['DEAD SINCE', (d) => formatTime(d.deadAt)],
            ],
            res,
          );
        },
      ),
    );
}
