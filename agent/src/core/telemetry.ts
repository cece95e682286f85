import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Clock, Logger, TelemetryMessage } from '@perch/shared';
import type { PipelineStats } from '../pipeline/types';
import type { Counters } from './counters';
import type { ReportedModel } from '@perch/shared';

export interface TelemetrySources {
  stateDir: string;
  version: string;
  startedAt: number;
  counters: Counters;
  outboxDepth(): number;
  dropped(): Record<string, number>;
  models(): ReportedModel[];
  pipelines(): readonly PipelineStats[];
  /** Where thermal zones live (a seam for tests). */
  thermalDir?: string;
}

/** A unique message id: 16 random bytes, base64url. */
export function messageId(): string {
  return crypto.randomBytes(16).toString('base64url');
}

const metricKey = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, '_')
    .slice(0, 128);

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** First thermal zone's temperature in °C, or undefined where there is none. */
export function readTemperature(dir: string): number | undefined {
  try {
    for (const zone of fs.readdirSync(dir)) {
      if (!zone.startsWith('thermal_zone')) continue;
      const milli = Number(fs.readFileSync(`${dir}/${zone}/temp`, 'utf8').trim());
      if (Number.isFinite(milli)) return milli / 1000;
    }
  } catch {
    // no thermal zones (x86 VM, container): simply not reported
  }
  return undefined;
}

/** Builds telemetry messages: system, agent and per-pipeline metrics, each with an id and a timestamp. */
export class TelemetryCollector {
  private lastCpu = os.cpus().map((c) => c.times);

  constructor(
    private readonly sources: TelemetrySources,
    private readonly clock: Clock,
  ) {}

  private cpuPercent(): number {
    const now = os.cpus().map((c) => c.times);
    let idle = 0;
    let total = 0;
    now.forEach((t, i) => {
      const p = this.lastCpu[i];
      if (!p) return;
      const sum = (x: typeof t) => x.user + x.nice + x.sys + x.idle + x.irq;
      total += sum(t) - sum(p);
      idle += t.idle - p.idle;
    });
    this.lastCpu = now;
    return total > 0 ? round(100 * (1 - idle / total), 1) : 0;
  }

  collect(): TelemetryMessage {
    const s = this.sources;
    const metrics: Record<string, number> = {};
    const info: Record<string, string | boolean | null> = {};
    const [l1, l5, l15] = os.loadavg();
    metrics['system.cpu_percent'] = this.cpuPercent();
    metrics['system.load1'] = round(l1 ?? 0);
    metrics['system.load5'] = round(l5 ?? 0);
    metrics['system.load15'] = round(l15 ?? 0);
    metrics['system.mem_total_mb'] = round(os.totalmem() / 2 ** 20, 1);
    metrics['system.mem_available_mb'] = round(os.freemem() / 2 ** 20, 1);
    metrics['system.uptime_s'] = Math.round(os.uptime());
    try {
      const st = fs.statfsSync(s.stateDir);
      metrics['system.disk_free_mb'] = round((st.bavail * st.bsize) / 2 ** 20, 1);
    } catch {
      // state folder gone: reported by the absence of the metric
    }
    const temp = readTemperature(s.thermalDir ?? '/sys/class/thermal');
    if (temp !== undefined) metrics['system.temperature_c'] = round(temp, 1);

    metrics['agent.uptime_s'] = Math.round((this.clock.now() - s.startedAt) / 1000);
    metrics['agent.rss_mb'] = round(process.memoryUsage.rss() / 2 ** 20, 1);
    metrics['agent.outbox_depth'] = s.outboxDepth();
    const dropped = s.dropped();
    metrics['agent.outbox_dropped'] = Object.values(dropped).reduce((a, b) => a + b, 0);
    for (const [kind, n] of Object.entries(dropped)) metrics[metricKey(`agent.outbox_dropped.${kind}`)] = n;
    for (const [name, n] of Object.entries(s.counters.snapshot())) metrics[metricKey(`agent.${name}`)] = n;
    info['agent.version'] = s.version;
    for (const m of s.models()) {
      if (m.state === 'active') info[metricKey(`model.${m.name}.version`)] = m.version;
      else info[metricKey(`model.${m.name}.state`)] = m.error ? `${m.state}:${m.error.code}` : m.state;
    }
    for (const p of s.pipelines()) {
      const base = `pipeline.${p.id}`;
      metrics[`${base}.fps`] = round(p.fps);
      metrics[`${base}.dropped_frames`] = p.dropped;
      metrics[`${base}.detections`] = p.detections;
      metrics[`${base}.events`] = p.events;
      metrics[`${base}.processed`] = p.processed;
      for (const [stage, lat] of Object.entries(p.latency)) {
        metrics[metricKey(`${base}.latency_p50_ms.${stage}`)] = round(lat.p50);
        metrics[metricKey(`${base}.latency_p95_ms.${stage}`)] = round(lat.p95);
        metrics[metricKey(`${base}.latency_p99_ms.${stage}`)] = round(lat.p99);
      }
      info[`${base}.state`] = p.state;
      if (p.model) {
        info[`${base}.provider`] = p.model.provider;
        info[`${base}.model_version`] = p.model.version;
      }
    }
    for (const k of Object.keys(metrics)) if (!Number.isFinite(metrics[k])) delete metrics[k];
    return { v: 1, id: messageId(), ts: this.clock.now(), metrics, info };
  }
}

/** Runs the collector on a schedule through the clock; `now()` publishes out of schedule. */
export class TelemetrySchedule {
  private timer: unknown;
  private period: number | undefined;

  constructor(
    private readonly publish: () => void,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Starts, or restarts with a new period. */
  start(intervalMs: number): void {
    this.stop();
    this.period = intervalMs;
    this.timer = this.clock.setInterval(() => this.now(), intervalMs);
  }

  /** The current period; undefined while stopped. */
  get intervalMs(): number | undefined {
    return this.period;
  }

  now(): void {
    try {
      this.publish();
    } catch (err) {
      this.logger.error('telemetry failed', { code: 'E_INTERNAL', err: String(err) });
    }
  }

  stop(): void {
    this.clock.clearInterval(this.timer as never);
    this.timer = undefined;
    this.period = undefined;
  }
}
