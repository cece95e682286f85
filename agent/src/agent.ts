import fs from 'node:fs';
import path from 'node:path';
import {
  childLogger,
  createLogger,
  decodeMessage,
  encodeMessage,
  PerchError,
  setLogLevel,
  systemClock,
  topics,
  type Clock,
  type DesiredState,
  type Logger,
  type LogLevel,
  type ReportedState,
} from '@perch/shared';
import { CommandLog } from './core/command-log';
import { CommandDispatcher, type CommandHandlers } from './core/commands';
import type { AgentConfig } from './core/config';
import { Counters } from './core/counters';
import { openAgentDatabase, type AgentDatabase } from './core/database';
import { DesiredPoller } from './core/desired-poller';
import { Downloader } from './core/downloader';
import { readJsonIfExists, writeFileAtomic } from './core/fs-atomic';
import { ensureEnrolled } from './core/identity/enroll';
import type { Credentials } from './core/identity/credentials';
import { killPointFromEnv, type KillPoint } from './core/kill-hook';
import { ModelStore } from './core/model-store';
import { MqttSession, DEFAULT_SESSION_OPTIONS, type MqttConnect } from './core/mqtt/session';
import { DEFAULT_OUTBOX_OPTIONS, Outbox } from './core/outbox';
import { OutboxSender } from './core/outbox-sender';
import { NoopPipelineHost, type PipelineHost, type PipelineHostFactory } from './core/pipelines-port';
import { OnnxProbation, type Probation } from './core/probation';
import { RefusedPipelinesHost, screenRemotePipelines } from './core/remote-pipelines';
import { Reconciler, type ReconcileReport } from './core/reconcile/reconciler';
import { createNotifier, watchdogIntervalMs, type Notifier } from './core/systemd/sd-notify';
import { pipelinesHealthCheck } from './core/systemd/watchdog-health';
import { Watchdog } from './core/systemd/watchdog';
import { messageId, TelemetryCollector, TelemetrySchedule } from './core/telemetry';
import { TufClient } from './core/tuf-client';
import { HomeAssistantBridge } from './integrations/homeassistant/agent-bridge';
import type { HaLink } from './integrations/homeassistant';
import { agentPaths, type AgentPaths } from './paths';

export const AGENT_VERSION = '0.1.0';
/** Metadata expiry cannot be judged on a clock earlier than this (a device without RTC before NTP). */
export const AGENT_BUILD_TIME = Date.UTC(2026, 10, 1);

export interface AgentOverrides {
  clock?: Clock;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  paths?: Partial<AgentPaths>;
  pipelineHost?: PipelineHostFactory;
  probation?: Probation;
  killPoint?: KillPoint;
  mqttConnect?: MqttConnect;
  buildTime?: number;
}

/**
 * The composition root: builds every service, hands each its dependencies, starts them in order and
 * stops them in reverse, where a failure in one stop does not keep the others from stopping.
 */
export class Agent {
  readonly paths: AgentPaths;
  readonly counters = new Counters();
  readonly clock: Clock;
  readonly logger: Logger;
  readonly startedAt: number;
  private readonly env: NodeJS.ProcessEnv;
  private readonly killPoint: KillPoint;
  private readonly abort = new AbortController();
  private db: AgentDatabase | undefined;
  outbox: Outbox | undefined;
  sender: OutboxSender | undefined;
  session: MqttSession | undefined;
  reconciler: Reconciler | undefined;
  pipelines: PipelineHost | undefined;
  /** Pipelines of the desired state refused by `remotePipelines`, reported through the host's stats. */
  private refusals: RefusedPipelinesHost | undefined;
  credentials: Credentials | undefined;
  homeAssistant: HomeAssistantBridge | undefined;
  private notifier: Notifier | undefined;
  private watchdog: Watchdog | undefined;
  private telemetry: TelemetrySchedule | undefined;
  private poller: DesiredPoller | undefined;
  private lastReport: ReconcileReport | undefined;
  private reportDirty = false;
  private stopped = false;
  /** Settings the desired state may change while running; undefined until the first is applied. */
  private runtime: RuntimeConfig | undefined;

  constructor(
    readonly config: AgentConfig,
    private readonly overrides: AgentOverrides = {},
  ) {
    this.clock = overrides.clock ?? systemClock;
    this.env = overrides.env ?? process.env;
    this.logger = overrides.logger ?? createLogger({ namespace: 'agent', level: config.logLevel });
    this.paths = agentPaths(config.stateDir, overrides.paths);
    this.killPoint = overrides.killPoint ?? killPointFromEnv(this.env);
    this.startedAt = this.clock.now();
  }

  private log(ns: string): Logger {
    return childLogger(this.logger, ns);
  }

  async start(): Promise<void> {
    const { config, clock, counters, paths } = this;
    fs.mkdirSync(paths.stateDir, { recursive: true });
    this.notifier = createNotifier(this.env, this.log('systemd'), counters);
    this.db = openAgentDatabase(paths.database);
    const outbox = new Outbox(
      this.db,
      {
        limits: {
          ...DEFAULT_OUTBOX_OPTIONS.limits,
          events: { ...DEFAULT_OUTBOX_OPTIONS.limits.events, maxRows: config.outbox.eventsMaxRows },
          telemetry: { ...DEFAULT_OUTBOX_OPTIONS.limits.telemetry, maxRows: config.outbox.telemetryMaxRows },
        },
        totalMaxBytes: config.outbox.totalMaxMb * 2 ** 20,
      },
      this.log('outbox'),
      counters,
      () => clock.now(),
    );
    this.outbox = outbox;
    const commandLog = new CommandLog(this.db);
    commandLog.prune(clock.now() - 24 * 3600_000);

    const creds = await ensureEnrolled({
      controllerUrl: config.controllerUrl ?? '',
      token: config.enrollToken,
      name: config.deviceName,
      keyFile: paths.identityKey,
      credentialsFile: paths.credentials,
      tufDir: paths.tufDir,
      enrolledRootFile: paths.enrolledRoot,
      clock,
      logger: this.log('enroll'),
      counters,
      signal: this.abort.signal,
    });
    this.credentials = creds;
    const deviceId = creds.deviceId;
    const prefix = creds.mqtt.topicPrefix;
    const controllerUrl = creds.controllerUrl.replace(/\/+$/, '');

    const tuf = new TufClient(
      {
        metadataDir: paths.tufDir,
        enrolledRootFile: paths.enrolledRoot,
        metadataBaseUrl: `${controllerUrl}/tuf/metadata`,
        targetBaseUrl: `${controllerUrl}/tuf/targets`,
        token: creds.deviceToken,
        clock,
        buildTime: this.overrides.buildTime ?? AGENT_BUILD_TIME,
      },
      this.log('tuf'),
      counters,
    );
    const eventsTopic = topics.events(deviceId, prefix);
    // The session is built below; the link reaches it when Home Assistant needs it.
    const current = () => this.session;
    const link: HaLink = {
      get connected() {
        return current()?.connected ?? false;
      },
      publish: (topic, payload, retain) =>
        current()?.publishAcked(topic, payload, retain) ?? Promise.reject(new Error('not connected')),
      subscribe: (topic) => current()?.subscribeExtra(topic),
      onConnect: (fn) => current()?.onConnected(fn) ?? (() => undefined),
      onMessage: (fn) => current()?.onExtraMessage(fn) ?? (() => undefined),
    };
    const ha = new HomeAssistantBridge({
      link,
      device: {
        deviceId,
        swVersion: AGENT_VERSION,
        // The controller serves the dashboard; Home Assistant links the device to it.
        ...(/^https?:\/\//.test(controllerUrl) ? { configurationUrl: controllerUrl } : {}),
      },
      topicPrefix: prefix,
      discoveryPrefix: config.homeAssistant.prefix,
      enabled: config.homeAssistant.enabled,
      stateIntervalMs: config.homeAssistant.stateIntervalS * 1000,
      stateFile: paths.homeAssistantState,
      snapshotsDir: paths.snapshotsDir,
      thermalDir: paths.thermalDir,
      clock,
      logger: this.log('homeassistant'),
    });
    this.homeAssistant = ha;
    const host = (this.overrides.pipelineHost ?? (() => new NoopPipelineHost()))({
      events: {
        emit: (event) => {
          outbox.enqueue('events', eventsTopic, event.id, encodeMessage('events', event));
          this.sender?.kick();
          void ha.onEvent(event);
        },
      },
      snapshotsDir: paths.snapshotsDir,
      logger: this.logger,
    });
    this.refusals = new RefusedPipelinesHost(ha.wrap(host), this.log('policy'), counters, () => clock.now());
    this.pipelines = this.refusals;
    const store = new ModelStore(paths.modelsDir, this.log('store'), counters, this.killPoint);
    this.reconciler = new Reconciler({
      store,
      downloader: new Downloader(
        clock,
        this.log('download'),
        {
          deadlineMs: config.update.downloadDeadlineS * 1000,
          minBytesPerSec: config.update.downloadMinBytesPerSec,
          windowMs: config.update.downloadWindowS * 1000,
          syncEveryBytes: 1024 * 1024,
        },
        this.killPoint,
      ),
      resolver: () => tuf,
      probation:
        this.overrides.probation ??
        new OnnxProbation(
          { warmupRuns: config.update.warmupRuns, trialRuns: config.update.trialRuns },
          this.log('probation'),
        ),
      pipelines: this.pipelines,
      downloadsDir: paths.downloadsDir,
      failuresFile: path.join(paths.stateDir, 'failures.json'),
      clock,
      logger: this.log('reconcile'),
      counters,
      killPoint: this.killPoint,
      onReport: (report) => this.onReport(report),
      options: { maxTrialAttempts: config.update.maxTrialAttempts },
    });

    const session = new MqttSession(
      creds.mqtt,
      deviceId,
      {
        onDesired: (d) => this.acceptDesired(d),
        onCommand: (name, cmd) => void dispatcher.dispatch(name, cmd),
        onConnect: () => {
          this.poller?.pause();
          this.publishReport();
          this.sender?.kick();
        },
        onDisconnect: () => this.poller?.resume(),
      },
      clock,
      this.log('mqtt'),
      counters,
      {
        ...DEFAULT_SESSION_OPTIONS,
        reconnectBaseMs: config.mqtt.reconnectBaseMs,
        reconnectCapMs: config.mqtt.reconnectCapMs,
        sessionExpiryS: config.mqtt.sessionExpiryS,
        willDelayS: config.mqtt.willDelayS,
        maxInboundBytes: config.mqtt.maxInboundBytes,
      },
      this.overrides.mqttConnect,
    );
    this.session = session;
    this.sender = new OutboxSender(outbox, session, clock, this.log('sender'));
    const resultTopic = topics.cmdResult(deviceId, prefix);
    const dispatcher = new CommandDispatcher(
      this.commandHandlers(),
      commandLog,
      (result) => {
        outbox.enqueue('cmd-result', resultTopic, result.id, encodeMessage('cmd-result', result));
        this.sender?.kick();
      },
      clock,
      this.log('commands'),
      counters,
    );
    const collector = new TelemetryCollector(
      {
        stateDir: paths.stateDir,
        version: AGENT_VERSION,
        startedAt: this.startedAt,
        counters,
        outboxDepth: () => outbox.depth(),
        dropped: () => outbox.dropped(),
        models: () => this.reconciler?.reportedModels() ?? [],
        pipelines: () => this.pipelines?.stats() ?? [],
        thermalDir: paths.thermalDir,
      },
      clock,
    );
    const telemetryTopic = topics.telemetry(deviceId, prefix);
    this.telemetry = new TelemetrySchedule(
      () => {
        const msg = collector.collect();
        outbox.enqueue('telemetry', telemetryTopic, msg.id, encodeMessage('telemetry', msg));
        this.sender?.kick();
      },
      clock,
      this.log('telemetry'),
    );
    this.poller = new DesiredPoller(
      {
        url: `${controllerUrl}${config.poll.path}`,
        token: creds.deviceToken,
        intervalMs: config.poll.intervalS * 1000,
        maxBytes: config.mqtt.maxInboundBytes,
      },
      (d) => this.acceptDesired(d),
      clock,
      this.log('poll'),
      counters,
    );

    // Act on the last known desired state at once: the device keeps working without a network.
    const cached = this.loadDesiredCache();
    if (cached) this.applyDesired(cached);
    else this.reconciler.trigger();
    this.applyRuntimeConfig(cached);
    // Discovery waits for the first pipelines applied, unless there is no desired state to apply.
    ha.start(cached !== undefined);
    session.start();
    this.poller.resume();
    this.telemetry.start(this.runtimeConfig().telemetryIntervalS * 1000);
    const period = watchdogIntervalMs(this.env);
    if (period !== undefined) {
      this.watchdog = new Watchdog(
        this.notifier,
        period,
        [
          {
            name: 'outbox',
            check: () =>
              this.sender?.healthy(config.watchdog.outboxStallS * 1000) ? undefined : 'no acknowledgement',
          },
          // A failed pipeline is reported, not restarted through systemd (a restart cannot fix a bad
          // config); a running pipeline that takes items and finishes none does stop the pings.
          pipelinesHealthCheck(() => this.pipelines?.stats() ?? [], clock),
        ],
        clock,
        this.log('watchdog'),
        counters,
      );
      this.watchdog.start();
    }
    this.notifier.notify(`READY=1\nSTATUS=device ${deviceId}`);
    this.logger.info('agent started', { deviceId, version: AGENT_VERSION });
  }

  private commandHandlers(): CommandHandlers {
    return {
      'report-now': () => {
        this.publishReport(true);
        this.telemetry?.now();
        return Promise.resolve(undefined);
      },
      'restart-pipeline': async (args) => {
        const id = args.id;
        if (typeof id !== 'string') throw new PerchError('E_CMD_FAILED', 'restart-pipeline needs args.id');
        const done = await this.pipelines!.restart(id);
        if (!done) throw new PerchError('E_CMD_FAILED', `no pipeline ${id}`);
        return { id };
      },
      snapshot: async (args) => {
        const id = typeof args.id === 'string' ? args.id : undefined;
        if (!id || !this.pipelines?.snapshot)
          throw new PerchError('E_CMD_FAILED', 'snapshot is not available');
        const ref = await this.pipelines.snapshot(id);
        return { id, snapshot: ref ?? null };
      },
      'reload-config': () => {
        this.reconciler?.trigger();
        return Promise.resolve({ reconciled: true });
      },
    };
  }

  /**
   * Hands a desired state to the reconciler: its pipelines screened by the device policy
   * (`remotePipelines`), then the local pipelines of the config file (trusted, not screened) whose ids
   * the desired state does not use. A refused pipeline keeps its id: a local one of the same id does not
   * run in its place. False when the reconciler ignores it (an older revision).
   */
  private applyDesired(desired: DesiredState): boolean {
    const { allowed, refused } = screenRemotePipelines(desired.pipelines, this.config.remotePipelines);
    const ids = new Set(desired.pipelines.map((p) => p.id));
    const local = this.config.pipelines.filter((p) => !ids.has(p.id));
    const accepted = this.reconciler?.setDesired({ ...desired, pipelines: [...allowed, ...local] }) ?? false;
    if (accepted) this.refusals?.setRefused(refused);
    return accepted;
  }

  private acceptDesired(desired: DesiredState): void {
    if (!this.applyDesired(desired)) return;
    this.applyRuntimeConfig(desired);
    try {
      writeFileAtomic(this.paths.desiredCache, JSON.stringify(desired));
    } catch (err) {
      this.logger.warn('cannot cache the desired state', { err: String(err) });
    }
  }

  /** The telemetry interval and log level in effect. */
  runtimeConfig(): RuntimeConfig {
    return (
      this.runtime ?? { telemetryIntervalS: this.config.telemetry.intervalS, logLevel: this.config.logLevel }
    );
  }

  /**
   * The desired state's `config` overrides the agent's own telemetry interval and log level while it is
   * set; a desired state without it restores them. A change reschedules telemetry, sets the level of
   * the agent's logger (every child follows it) and is reported.
   */
  private applyRuntimeConfig(desired: DesiredState | undefined): void {
    const next: RuntimeConfig = {
      telemetryIntervalS: desired?.config?.telemetryIntervalS ?? this.config.telemetry.intervalS,
      logLevel: desired?.config?.logLevel ?? this.config.logLevel,
    };
    const prev = this.runtimeConfig();
    const first = this.runtime === undefined;
    this.runtime = next;
    if (!first && prev.telemetryIntervalS === next.telemetryIntervalS && prev.logLevel === next.logLevel)
      return;
    // At start the logger already has the configured level (or the one a caller gave it).
    if (first ? desired?.config?.logLevel !== undefined : prev.logLevel !== next.logLevel)
      setLogLevel(this.logger, next.logLevel);
    const telemetry = this.telemetry;
    if (telemetry?.intervalMs !== undefined && telemetry.intervalMs !== next.telemetryIntervalS * 1000)
      telemetry.start(next.telemetryIntervalS * 1000);
    if (first && !desired?.config) return;
    this.logger.info('runtime config applied', { ...next, from: desired?.config ? 'desired' : 'local' });
    this.reportDirty = true;
    this.publishReport();
  }

  private loadDesiredCache(): DesiredState | undefined {
    try {
      const raw = readJsonIfExists(this.paths.desiredCache);
      if (raw === undefined) return undefined;
      const decoded = decodeMessage('desired', JSON.stringify(raw));
      if (decoded.ok) return decoded.value;
    } catch {
      // fall through
    }
    this.counters.error('E_AGENT_STATE_CORRUPT');
    return undefined;
  }

  private onReport(report: ReconcileReport): void {
    this.lastReport = report;
    this.publishReport();
  }

  /** The reported state, retained; published directly (latest wins), re-sent on every connect. */
  reportedState(): ReportedState {
    const r = this.lastReport;
    const stats = this.pipelines?.stats() ?? [];
    return {
      v: 1,
      ts: this.clock.now(),
      rev: r?.rev ?? 0,
      settled: r?.settled ?? false,
      models: (r?.models ?? []).slice(0, 64),
      pipelines: stats.slice(0, 32).map((p) => ({
        id: p.id,
        state: p.state === 'stopping' ? 'stopped' : p.state,
        ...(p.lastError
          ? { error: { code: p.lastError.code, message: p.lastError.message.slice(0, 2000) } }
          : {}),
      })),
      agent: { version: AGENT_VERSION, startedAt: this.startedAt, config: this.runtimeConfig() },
      ...(r?.untrustedTime ? { untrustedTime: true } : {}),
    };
  }

  private publishReport(force = false): void {
    const session = this.session;
    const creds = this.credentials;
    if (!session || !creds) return;
    if (!session.connected) {
      this.reportDirty = true;
      return;
    }
    if (!force && !this.reportDirty && !this.lastReport) return;
    this.reportDirty = false;
    let payload: string;
    try {
      payload = encodeMessage('reported', this.reportedState());
    } catch (err) {
      this.counters.error('E_INTERNAL');
      this.logger.error('reported state failed validation', { code: 'E_INTERNAL', err: String(err) });
      return;
    }
    session.publishAcked(topics.reported(creds.deviceId, creds.mqtt.topicPrefix), payload, true).catch(() => {
      this.reportDirty = true;
    });
  }

  /**
   * Graceful, bounded stop: stop intake (pipelines, reconciler, timers), flush what fits in the
   * remaining time, publish `offline`, close the database. Each part is stopped even if another fails.
   */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const deadline = this.clock.now() + this.config.shutdownTimeoutMs;
    const left = () => Math.max(0, deadline - this.clock.now());
    const attempt = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        this.logger.warn('stop step failed', { what, err: String(err) });
      }
    };
    this.abort.abort();
    await attempt('notify', () => this.notifier?.notify('STOPPING=1'));
    await attempt('watchdog', () => this.watchdog?.stop());
    await attempt('telemetry', () => this.telemetry?.stop());
    await attempt('poller', () => this.poller?.pause());
    await attempt('reconciler', () => this.reconciler?.stop());
    await attempt('homeassistant', () => this.homeAssistant?.stop());
    await attempt('pipelines', () => this.pipelines?.stop());
    await attempt('flush', () => this.sender?.drain(Math.max(0, left() - 1000)));
    await attempt('mqtt', () => this.session?.stop(Math.min(1000, left()), reason));
    await attempt('database', () => this.db?.close());
    await attempt('notifier', () => this.notifier?.close());
    this.logger.info('agent stopped', { reason });
  }
}

/** What the desired state's `config` may change at run time. */
export interface RuntimeConfig {
  telemetryIntervalS: number;
  logLevel: LogLevel;
}

/** Builds and starts an agent. */
export async function startAgent(config: AgentConfig, overrides: AgentOverrides = {}): Promise<Agent> {
  const agent = new Agent(config, overrides);
  try {
    await agent.start();
  } catch (err) {
    const code = err instanceof PerchError ? err.code : 'E_INTERNAL';
    agent.logger.error('agent start failed', { code, err: err instanceof Error ? err.message : String(err) });
    await agent.stop('start failed');
    throw err;
  }
  return agent;
}

export { messageId };
