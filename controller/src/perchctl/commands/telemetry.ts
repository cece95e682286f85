import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { formatTime } from '../output';
import { durationArg, idArg, timeArg, usage, type Runner } from './args';

interface Point {
  ts: number;
  avg: number;
  min: number;
  max: number;
  count: number;
}

const METRIC = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

export function registerTelemetry(program: Command, run: Runner): void {
  program
    .command('telemetry <device>')
    .description('a metric of a device over time (e.g. system.cpu_percent, pipeline.<id>.fps)')
    .requiredOption('--metric <name>', 'metric name')
    .option('--since <time>', 'from (ISO 8601, epoch ms, or -1h)', '-1h')
    .option('--until <time>', 'to (default now)')
    .option('--step <duration>', 'bucket size: 10s, 1m, 1h')
    .action(
      run(
        async (
          { client, out }: CommandContext,
          rawDevice: string,
          opts: { metric: string; since: string; until?: string; step?: string },
        ) => {
          const device = idArg(rawDevice, 'device id');
          if (!METRIC.test(opts.metric)) throw usage('--metric must be [a-z0-9_.-], at most 128 characters');
          const stepS = durationArg(opts.step, '--step');
          const res = await client().get<{ device: string; metric: string; points: Point[] }>('/telemetry', {
            device,
            metric: opts.metric,
            from: timeArg(opts.since, '--since'),
            to: timeArg(opts.until, '--until'),
            stepMs: stepS === undefined ? undefined : stepS * 1000,
          });
          out.table(
            res.points,
            [
              ['TIME', (p) => formatTime(p.ts)],
              ['AVG', (p) => round(p.avg)],
              ['MIN', (p) => round(p.min)],
              ['MAX', (p) => round(p.max)],
              ['N', (p) => p.count],
            ],
            res,
          );
        },
      ),
    );
}

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3);
}
