import fs from 'node:fs';
import path from 'node:path';
import type { Clock, EventMessage, Logger, PipelineConfig, TimerHandle } from '@perch/shared';
import { readJsonIfExists, writeFileAtomic } from '../../core/fs-atomic';
import type { ActiveModel, PipelineHost } from '../../core/pipelines-port';
import { readTemperature } from '../../core/telemetry';
import type { HaDevice, HaPipeline } from './discovery';
import { HomeAssistantPublisher, type HaLink, type HaPublishedState, type HaStateStore } from './publisher';

/** Snapshots larger than this are not sent to Home Assistant (they would not fit broker packet limits). */
const MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024;
/** Sources that produce no frames, hence no snapshots. */
const FRAMELESS_SOURCE = /^(audio|sensor-)/;

/** Keeps what was announced in a JSON file, so components of pipelines removed while down get removed. */
export class FileHaStateStore implements HaStateStore {
  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {}

  load(): Promise<HaPublishedState | undefined> {
    try {
      const raw = readJsonIfExists(this.file, 1024 * 1024) as Partial<HaPublishedState> | undefined;
      if (!raw) return Promise.resolve(undefined);
      const strings = (o: unknown): Record<string, string> =>
        Object.fromEntries(
          Object.entries(typeof o === 'object' && o !== null ? o : {}).filter(
            (e): e is [string, string] => typeof e[1] === 'string',
          ),
        );
      return Promise.resolve({ components: strings(raw.components), removed: strings(raw.removed) });
    } catch (err) {
      // A damaged file only costs the removal of components gone while the agent was down.
      this.logger.warn('Home Assistant state file unreadable; starting afresh', { err: String(err) });
      return Promise.resolve(undefined);
    }
  }

  save(state: HaPublishedState): Promise<void> {
    writeFileAtomic(this.file, JSON.stringify(state));
    return Promise.resolve();
  }
}

export interface HomeAssistantBridgeOptions {
  link: HaLink;
  device: HaDevice;
  topicPrefix: string;
  discoveryPrefix: string;
  enabled: boolean;
  stateIntervalMs: number;
  stateFile: string;
  snapshotsDir: string;
  thermalDir: string;
  clock: Clock;
  logger: Logger;
}

/** Labels a pipeline exposes: its rule labels, else its model's (the spec's own labels win). */
export function pipelineLabels(p: PipelineConfig, model: ActiveModel | undefined): readonly string[] {
  if (p.rules?.labels?.length) return p.rules.labels;
  const spec = model?.bundle.spec as { labels?: unknown } | undefined;
  if (Array.isArray(spec?.labels) && spec.labels.every((l) => typeof l === 'string' && l.length > 0))
    return spec.labels as string[];
  return model?.bundle.labels ?? [];
}

export function toHaPipeline(p: PipelineConfig, model: ActiveModel | undefined): HaPipeline {
  return {
    id: p.id,
    labels: pipelineLabels(p, model),
    snapshots: p.outputs?.snapshots !== false && !FRAMELESS_SOURCE.test(p.source.kind),
  };
}

/**
 * Connects the agent to Home Assistant: announces the pipelines the pipeline host is told to run
 * (it wraps the host, so discovery follows every change of the desired pipelines), follows the event
 * stream (detected, count, last event, snapshot image) and publishes frame rate, inference latency
 * and CPU temperature on a timer.
 *
 * Discovery starts with the first set of pipelines the host receives, not before: announcing an
 * empty set first would send removal stubs for every component of the last run and make Home
 * Assistant delete and re-create those entities on each restart. An agent without any desired
 * state yet has nothing to remove, and announces itself at once (`start(false)`).
 */
export class HomeAssistantBridge {
  readonly publisher: HomeAssistantPublisher;
  private host: PipelineHost | undefined;
  private pipelines: readonly HaPipeline[] | undefined;
  private started: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: HomeAssistantBridgeOptions) {
    this.publisher = new HomeAssistantPublisher({
      link: options.link,
      device: options.device,
      logger: options.logger,
      clock: options.clock,
      enabled: options.enabled,
      discoveryPrefix: options.discoveryPrefix,
      topicPrefix: options.topicPrefix,
      snapshotMode: 'image',
      store: new FileHaStateStore(options.stateFile, options.logger),
    });
  }

  /** The host, wrapped: every `apply` also updates the discovery. */
  wrap(host: PipelineHost): PipelineHost {
    this.host = host;
    const apply = async (pipelines: readonly PipelineConfig[], models: ReadonlyMap<string, ActiveModel>) => {
      await host.apply(pipelines, models);
      await this.setPipelines(pipelines.map((p) => toHaPipeline(p, models.get(p.model))));
    };
    return {
      apply,
      restart: (id) => host.restart(id),
      ...(host.snapshot ? { snapshot: (id: string) => host.snapshot!(id) } : {}),
      stop: () => host.stop(),
      stats: () => host.stats(),
    };
  }

  /** `waitForPipelines`: true while the agent has a desired state whose pipelines are not applied yet. */
  start(waitForPipelines: boolean): void {
    if (!waitForPipelines) void this.begin([]);
  }

  private begin(pipelines: readonly HaPipeline[]): Promise<void> {
    this.pipelines = pipelines;
    this.started ??= this.publisher.start(pipelines).then(
      () => {
        if (this.stopped || !this.publisher.enabled) return;
        this.timer = this.options.clock.setInterval(
          () => void this.publishStats(),
          this.options.stateIntervalMs,
        );
        void this.publishStats();
      },
      (err: unknown) => {
        // Logged and counted by the publisher (E_HA_DISCOVERY_INVALID); the agent runs on without it.
        this.options.logger.error('Home Assistant discovery not started', { err: String(err) });
      },
    );
    return this.started;
  }

  private async setPipelines(pipelines: readonly HaPipeline[]): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.started) return await this.begin(pipelines);
      await this.started;
      this.pipelines = pipelines;
      await this.publisher.setPipelines(pipelines);
    } catch (err) {
      this.options.logger.warn('Home Assistant discovery update failed', { err: String(err) });
    }
  }

  /** One pipeline event: detected/count/last event, and the snapshot of a start. Never throws. */
  async onEvent(event: EventMessage): Promise<void> {
    if (!this.started || this.stopped || !this.publisher.enabled) return;
    try {
      await this.publisher.applyEvent(event);
      const p = this.pipelines?.find((x) => x.id === event.pipeline);
      if (event.phase === 'start' && event.snapshot && p?.snapshots) {
        const file = path.join(this.options.snapshotsDir, `${path.basename(event.snapshot)}.jpg`);
        const stat = await fs.promises.stat(file);
        if (stat.size <= MAX_SNAPSHOT_BYTES)
          await this.publisher.setSnapshot(event.pipeline, await fs.promises.readFile(file));
      }
    } catch (err) {
      this.options.logger.warn('Home Assistant state update failed', { err: String(err) });
    }
  }

  /** Frame rate, inference latency (median of the inference stage) and CPU temperature. */
  async publishStats(): Promise<void> {
    if (this.stopped) return;
    const announced = new Set((this.pipelines ?? []).map((p) => p.id));
    try {
      for (const s of this.host?.stats() ?? []) {
        if (!announced.has(s.id)) continue;
        if (Number.isFinite(s.fps)) await this.publisher.setFps(s.id, s.fps);
        if (s.latency.infer.count > 0 && Number.isFinite(s.latency.infer.p50))
          await this.publisher.setLatency(s.id, s.latency.infer.p50);
      }
      const celsius = readTemperature(this.options.thermalDir);
      if (celsius !== undefined) await this.publisher.setCpuTemperature(celsius);
    } catch (err) {
      this.options.logger.warn('Home Assistant state update failed', { err: String(err) });
    }
  }

  stop(): void {
    this.stopped = true;
    this.options.clock.clearInterval(this.timer);
    this.timer = undefined;
    this.publisher.stop();
  }
}
