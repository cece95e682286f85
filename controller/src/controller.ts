import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import cron from 'node-cron';
import type { FastifyInstance } from 'fastify';
import { childLogger, createLogger, systemClock, topics, type Clock, type Logger } from '@perch/shared';
import { brokerMode, controllerPaths, type ControllerConfig } from './config';
import { openSqliteStore } from './db/open';
import { ControllerMetrics } from './metrics';
import { TufRepository, type TufLifetimes } from './tuf/repository';
import { ArtifactStore } from './models/artifacts';
import { Ingest, type IngestSink } from './mqtt/ingest';
import { EmbeddedBroker } from './mqtt/embedded-broker';
import { ExternalBroker } from './mqtt/external-broker';
import { MosquittoBroker } from './mqtt/mosquitto-broker';
import { fleetEventsTopic } from './broker/dynsec-acl';
import { KyselyWebhookStore, WebhookDispatcher, type WebhookStats } from './integrations/webhooks';
import { EventFanout } from './integrations/event-fanout';
import type { DeviceBus, InboundMessage } from './mqtt/bus';
import { buildApp } from './http/app';
import { createApiToken, needsAdminToken } from './auth/api-tokens';
import type { AppDeps } from './context';
import { runRetention } from './retention';

/** How long a stop waits for in-flight HTTP requests before it closes their connections. */
const HTTP_CLOSE_GRACE_MS = 3000;

export interface StartOptions {
  clock?: Clock;
  logger?: Logger;
  /** Clock used to sign TUF metadata (tests sign "in the past" to get expired metadata). */
  tufClock?: Clock;
  tufLifetimes?: TufLifetimes;
  /** Skip listening on HTTP (tests that use inject). */
  listen?: boolean;
  /** Start cron jobs (timestamp refresh, retention). Default true. */
  cron?: boolean;
  /** Webhook retry jitter source (tests pass a constant). */
  random?: () => number;
}

export interface RunningController {
  app: FastifyInstance;
  deps: AppDeps;
  ingest: IngestSink;
  broker: DeviceBus & { stop(): Promise<void> };
  /** `http://host:port` when listening. */
  url: string;
  /** Embedded broker port (0 in external mode). */
  mqttPort: number;
  /** Fleet topic re-publication and webhook queueing of newly stored events. */
  fanout: EventFanout;
  /** Set when this start created the first admin token (also written to `<home>/admin-token`). */
  adminToken?: string;
  stop(): Promise<void>;
}

const CLIENT_ID = /^perch-controller-[0-9a-f]{12}$/;

/** The controller's MQTT client id: read from `file`, or made and written there (0600) the first time. */
export async function stableClientId(file: string): Promise<string> {
  try {
    const id = (await fs.readFile(file, 'utf8')).trim();
    if (CLIENT_ID.test(id)) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = `perch-controller-${randomBytes(6).toString('hex')}`;
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, `${id}\n`, { mode: 0o600 });
  await fs.rename(tmp, file);
  return id;
}

/** Creates the data folder, database, TUF keys and first admin token. Idempotent. */
export async function initController(
  config: ControllerConfig,
  options: { clock?: Clock; logger?: Logger; tufClock?: Clock; tufLifetimes?: TufLifetimes } = {},
) {
  const clock = options.clock ?? systemClock;
  const paths = controllerPaths(config.home);
  await fs.mkdir(paths.root, { recursive: true, mode: 0o700 });
  const store = await openSqliteStore({ file: paths.database });
  try {
    const tuf = new TufRepository(paths.tuf, options.tufClock ?? clock, options.tufLifetimes);
    await tuf.open();
    let adminToken: string | undefined;
    if (await needsAdminToken(store)) {
      adminToken = (await createApiToken(store, clock.now(), 'initial admin', 'admin', 'init')).token;
      await fs.writeFile(paths.adminToken, `${adminToken}\n`, { mode: 0o600 });
      await fs.chmod(paths.adminToken, 0o600);
    }
    return { adminToken, paths };
  } finally {
    await store.close();
  }
}

/**
 * The composition root: builds every service from the config, starts them in order, and returns a
 * handle whose `stop()` stops them in reverse order (each failure logged, the others still stopped).
 */
export async function startController(
  config: ControllerConfig,
  options: StartOptions = {},
): Promise<RunningController> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ namespace: 'controller', level: config.logLevel });
  const { adminToken, paths } = await initController(config, {
    clock,
    logger,
    tufClock: options.tufClock,
    tufLifetimes: options.tufLifetimes,
  });
  const stops: Array<[string, () => Promise<void> | void]> = [];
  const stopAll = async () => {
    for (const [name, fn] of stops.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.error('stop failed', { service: name, err: String(err) });
      }
    }
    stops.length = 0;
  };
  try {
    const store = await openSqliteStore({ file: paths.database });
    stops.push(['store', () => store.close()]);
    const metrics = new ControllerMetrics();
    const tuf = new TufRepository(paths.tuf, options.tufClock ?? clock, options.tufLifetimes);
    await tuf.open();
    const artifacts = new ArtifactStore(paths.artifacts);
    const outcome: Record<keyof WebhookStats, string> = {
      enqueued: 'enqueued',
      delivered: 'delivered',
      failedAttempts: 'failed_attempt',
      deadLettered: 'dead_letter',
      enqueueFailures: 'enqueue_failure',
    };
    const webhooks = new WebhookDispatcher({
      store: new KyselyWebhookStore(store),
      logger: childLogger(logger, 'webhooks'),
      clock,
      maxAttempts: config.webhooks.maxAttempts,
      backoff: { baseMs: config.webhooks.backoffBaseMs, maxMs: config.webhooks.backoffMaxMs },
      timeoutMs: config.webhooks.timeoutMs,
      ...(options.random ? { random: options.random } : {}),
      onCount: (c) => metrics.webhookDeliveries.inc({ outcome: outcome[c] }),
    });
    let broker: (DeviceBus & { stop(): Promise<void> }) | undefined;
    const fanout = new EventFanout({
      store,
      bus: {
        publish: (topic, payload) =>
          broker ? broker.publish(topic, payload) : Promise.reject(new Error('broker not started')),
      },
      webhooks,
      metrics,
      logger: childLogger(logger, 'fanout'),
      clock,
      fleetTopic: fleetEventsTopic(config.topicPrefix),
    });
    // Events the ingest stored just before an earlier crash, never handed to the webhooks.
    await fanout.recover();
    // In-thread on purpose: a worker thread for decode + write was measured slower on 2 cores (the
    // copy and hand-over cost more than the parallelism gained while broker and devices share the CPU).
    const ingest: IngestSink = new Ingest({
      store,
      clock,
      logger: childLogger(logger, 'ingest'),
      metrics,
      topicPrefix: config.topicPrefix,
      maxPayloadBytes: config.mqtt.maxPacketBytes,
      onEventsStored: (events) => fanout.accept(events),
    });
    // Stopped after the ingest (reverse order): the ingest's last batch still reaches the fan-out,
    // whose queue is drained into the webhook tables before the dispatcher stops.
    stops.push(['webhooks', () => webhooks.stop()]);
    stops.push(['fanout', () => fanout.close()]);
    stops.push(['ingest', () => ingest.stop()]);
    const onMessage = (m: InboundMessage) => ingest.accept(m);
    const republishDesired = async () => {
      if (!broker) return;
      const rows = await store.db
        .selectFrom('desired')
        .innerJoin('devices', 'devices.id', 'desired.device_id')
        .select(['desired.device_id', 'desired.doc'])
        .where('devices.revoked_at', 'is', null)
        .execute();
      for (const r of rows)
        await broker.publishRetained(topics.desired(r.device_id, config.topicPrefix), r.doc);
    };
    let mqttPort = 0;
    let mqttUrl: string;
    // One controller (no share group): a client id kept in the data folder, so that after a restart the
    // broker hands over what it queued for the controller's session while it was away.
    const clientId =
      config.mqtt.mode !== 'embedded' && !config.mqtt.shareGroup
        ? { clientId: await stableClientId(paths.mqttClientId) }
        : {};
    const mode = brokerMode(config.mqtt);
    const onReconnect = () => {
      republishDesired().catch((err: unknown) =>
        logger.warn('republishing desired state failed', { err: String(err) }),
      );
    };
    if (mode === 'embedded') {
      const embedded = new EmbeddedBroker({
        store,
        logger: childLogger(logger, 'broker'),
        metrics,
        host: config.mqtt.host,
        port: config.mqtt.port,
        topicPrefix: config.topicPrefix,
        maxPacketBytes: config.mqtt.maxPacketBytes,
        homeAssistantPrefix: config.homeAssistant.discoveryPrefix,
        fleetTopic: fleetEventsTopic(config.topicPrefix),
        onMessage,
      });
      await embedded.start();
      broker = embedded;
      mqttPort = embedded.port;
      mqttUrl = config.mqtt.publicUrl ?? `mqtt://127.0.0.1:${mqttPort}`;
    } else if (mode === 'mosquitto') {
      const mosquitto = new MosquittoBroker({
        url: config.mqtt.url ?? '',
        adminUsername: config.mqtt.username ?? '',
        adminPassword: config.mqtt.password ?? '',
        topicPrefix: config.topicPrefix,
        homeAssistantPrefix: config.homeAssistant.discoveryPrefix,
        logger: childLogger(logger, 'broker'),
        onMessage,
        onReconnect,
        ...clientId,
        ...(config.mqtt.shareGroup ? { shareGroup: config.mqtt.shareGroup } : {}),
      });
      await mosquitto.start();
      broker = mosquitto;
      mqttUrl = config.mqtt.publicUrl ?? config.mqtt.url ?? '';
    } else {
      const external = new ExternalBroker({
        url: config.mqtt.url ?? '',
        username: config.mqtt.username ?? '',
        password: config.mqtt.password ?? '',
        topicPrefix: config.topicPrefix,
        logger: childLogger(logger, 'broker'),
        onMessage,
        onReconnect,
        ...clientId,
        ...(config.mqtt.shareGroup ? { shareGroup: config.mqtt.shareGroup } : {}),
      });
      await external.start();
      broker = external;
      mqttUrl = config.mqtt.publicUrl ?? config.mqtt.url ?? '';
    }
    const started = broker;
    stops.push(['broker', () => started.stop()]);
    // Deliveries left pending by an earlier run resume now.
    webhooks.start();
    // Retained desired state lives in the database; the broker (aedes keeps it in memory, an external
    // broker may have lost it) gets it again at every start.
    await republishDesired();

    const deps: AppDeps = {
      store,
      clock,
      logger,
      metrics,
      bus: started,
      tuf,
      artifacts,
      webhooks,
      settings: {
        publicUrl: config.http.publicUrl ?? `http://127.0.0.1:${config.http.port}`,
        mqttUrl,
        topicPrefix: config.topicPrefix,
        bodyLimitBytes: config.limits.bodyBytes,
        modelLimitBytes: config.limits.modelBytes,
        sideFileLimitBytes: config.limits.sideFileBytes,
        enrollSkewMs: 300_000,
        homeAssistantPrefix: config.homeAssistant.discoveryPrefix,
      },
    };
    const app = await buildApp(deps);
    stops.push([
      'http',
      async () => {
        // Graceful, with a deadline: in-flight requests get HTTP_CLOSE_GRACE_MS to finish, then every
        // connection still open (a keep-alive one the server saw go idle only after close began, a
        // stalled download) is destroyed, so a stop can never hang on a client.
        const force = setTimeout(() => app.server.closeAllConnections(), HTTP_CLOSE_GRACE_MS);
        try {
          await app.close();
        } finally {
          clearTimeout(force);
        }
      },
    ]);
    let url = '';
    if (options.listen !== false) {
      await app.listen({ host: config.http.host, port: config.http.port });
      const addr = app.server.address();
      const port = addr && typeof addr === 'object' ? addr.port : config.http.port;
      url = `http://127.0.0.1:${port}`;
      if (!config.http.publicUrl) (deps.settings as { publicUrl: string }).publicUrl = url;
    } else {
      await app.ready();
    }

    if (options.cron !== false) {
      const tufTask = cron.schedule(
        config.tuf.refreshCron,
        async () => {
          try {
            await tuf.refresh();
          } catch (err) {
            logger.error('TUF refresh failed', { err: String(err) });
          }
        },
        { name: 'tuf-refresh', noOverlap: true },
      );
      const retentionTask = cron.schedule(
        config.retention.cron,
        async () => {
          try {
            await runRetention(store, clock.now(), config.retention, logger);
          } catch (err) {
            logger.error('retention failed', { err: String(err) });
          }
        },
        { name: 'retention', noOverlap: true },
      );
      stops.push([
        'cron',
        async () => {
          await tufTask.destroy();
          await retentionTask.destroy();
        },
      ]);
      // A start after a long stop may find the timestamp near expiry: check at once.
      await tuf.refresh();
    }

    return {
      app,
      deps,
      ingest,
      broker: started,
      fanout,
      url,
      mqttPort,
      ...(adminToken ? { adminToken } : {}),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
