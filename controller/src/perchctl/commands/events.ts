import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { idArg, intArg, oneOf, timeArg, type Runner } from './args';

export interface EventView {
  id: string;
  device: string;
  ts: number;
  eventId: string;
  phase: string;
  pipeline: string;
  label: string;
  score: number;
  zone?: string;
  box?: { x: number; y: number; w: number; h: number };
  snapshot?: string;
}

interface EventFilters {
  device?: string;
  label?: string;
  pipeline?: string;
  phase?: string;
}

function filtersFrom(opts: EventFilters) {
  return {
    device: opts.device === undefined ? undefined : idArg(opts.device, '--device'),
    pipeline: opts.pipeline === undefined ? undefined : idArg(opts.pipeline, '--pipeline'),
    label: opts.label,
    phase: opts.phase === undefined ? undefined : oneOf(opts.phase, ['start', 'update', 'end'], '--phase'),
  };
}

function line(e: EventView): string {
  const box = e.box ? ` box=${[e.box.x, e.box.y, e.box.w, e.box.h].map((n) => n.toFixed(3)).join(',')}` : '';
  return `${formatTime(e.ts)}  ${e.device}  ${e.pipeline}  ${e.phase.padEnd(6)}  ${e.label}  ${e.score.toFixed(2)}${e.zone ? `  zone=${e.zone}` : ''}${box}`;
}

export function registerEvents(program: Command, run: Runner): void {
  const cmd = program.command('events').description('detection events');

  const filters = (c: Command) =>
    c
      .option('--device <id>', 'only this device')
      .option('--label <label>', 'only this label')
      .option('--pipeline <id>', 'only this pipeline')
      .option('--phase <phase>', 'start, update or end');

  filters(cmd.command('ls', { isDefault: true }).description('recent events, newest first'))
    .option('--since <time>', 'from this time (ISO 8601, epoch ms, or -1h)')
    .option('--limit <n>', 'at most this many', '50')
    .action(
      run(async ({ client, out }: CommandContext, opts: EventFilters & { since?: string; limit: string }) => {
        const { events } = await client().get<{ events: EventView[] }>('/events', {
          ...filtersFrom(opts),
          from: timeArg(opts.since, '--since'),
          limit: intArg(opts.limit, '--limit', 1, 1000),
        });
        out.table(
          events,
          [
            ['TIME', (e) => formatTime(e.ts)],
            ['DEVICE', (e) => e.device],
            ['PIPELINE', (e) => e.pipeline],
            ['PHASE', (e) => e.phase],
            ['LABEL', (e) => e.label],
            ['SCORE', (e) => e.score.toFixed(2)],
            ['ZONE', (e) => e.zone],
          ],
          { events },
        );
      }),
    );

  filters(cmd.command('tail').description('follow new events as they arrive (Ctrl-C to stop)'))
    .option('--since <time>', 'also print events from this time on (default: only new ones)')
    .option('--interval <ms>', 'how often to ask the controller', '1000')
    .option('--count <n>', 'exit after this many events')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          opts: EventFilters & { since?: string; interval: string; count?: string },
        ) => {
          const api = client();
          const interval = intArg(opts.interval, '--interval', 100, 60_000) ?? 1000;
          const count = intArg(opts.count, '--count', 1, 1_000_000);
          const stop = new AbortController();
          const onSignal = () => stop.abort();
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          // Events arrive with device timestamps: look back a little and deduplicate by message id.
          let from = timeArg(opts.since, '--since') ?? Date.now() - 1000;
          const seen = new Map<string, number>();
          let printed = 0;
          try {
            while (!stop.signal.aborted) {
              const { events } = await api.get<{ events: EventView[] }>('/events', {
                ...filtersFrom(opts),
                from,
                limit: 1000,
              });
              for (const e of events.slice().reverse()) {
                if (seen.has(e.id)) continue;
                seen.set(e.id, e.ts);
                if (out.json) out.stdout.write(`${JSON.stringify(e)}\n`);
                else out.stdout.write(`${line(e)}\n`);
                printed++;
                if (count !== undefined && printed >= count) return;
              }
              const newest = Math.max(from, ...events.map((e) => e.ts));
              from = Math.max(from, newest - 5000);
              for (const [id, ts] of seen) if (ts < from) seen.delete(id);
              await new Promise<void>((resolve) => {
                const t = setTimeout(resolve, interval);
                stop.signal.addEventListener('abort', () => {
                  clearTimeout(t);
                  resolve();
                });
              });
            }
          } finally {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
          }
        },
      ),
    );
}
