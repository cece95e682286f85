import { z } from 'zod';
import { loadConfig, pipelineConfigSchema, ID_PATTERN } from '@perch/shared';
import { DEFAULT_STATE_DIR } from '../paths';

/** The agent configuration: one schema gives the type and the validator. */
export const agentConfigSchema = z.strictObject({
  stateDir: z.string().min(1).default(DEFAULT_STATE_DIR),
  controllerUrl: z.url().optional(),
  enrollToken: z.string().min(1).max(512).optional(),
  /** Requested device id at enrollment. */
  deviceName: z.string().regex(ID_PATTERN).optional(),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  telemetry: z.strictObject({ intervalS: z.number().int().min(1).max(86_400).default(60) }).prefault({}),
  update: z
    .strictObject({
      maxTrialAttempts: z.number().int().min(1).max(20).default(3),
      warmupRuns: z.number().int().min(0).max(100).default(2),
      trialRuns: z.number().int().min(1).max(1000).default(5),
      downloadDeadlineS: z.number().int().min(1).default(1800),
      downloadMinBytesPerSec: z.number().int().min(0).default(1024),
      downloadWindowS: z.number().int().min(1).default(30),
    })
    .prefault({}),
  mqtt: z
    .strictObject({
      reconnectBaseMs: z.number().int().min(10).default(1000),
      reconnectCapMs: z.number().int().min(10).default(300_000),
      /** MQTT 5: how long the broker keeps the session (subscriptions, queued QoS 1 commands) while away. */
      sessionExpiryS: z
        .number()
        .int()
        .min(0)
        .max(2 ** 32 - 1)
        .default(7 * 24 * 3600),
      /** MQTT 5: the `offline` will waits this long, so a quick reconnect does not flap the status. */
      willDelayS: z
        .number()
        .int()
        .min(0)
        .max(2 ** 32 - 1)
        .default(10),
      maxInboundBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .default(256 * 1024),
    })
    .prefault({}),
  poll: z
    .strictObject({
      intervalS: z.number().int().min(1).default(60),
      path: z.string().startsWith('/').default('/api/v1/device/self'),
    })
    .prefault({}),
  outbox: z
    .strictObject({
      eventsMaxRows: z.number().int().min(1).default(20_000),
      telemetryMaxRows: z.number().int().min(1).default(10_000),
      /** Fractions allowed (down to 10 kB): a small device or a test may want a tiny bound. */
      totalMaxMb: z.number().min(0.01).default(48),
    })
    .prefault({}),
  /** Home Assistant MQTT discovery (docs/INTEGRATIONS.md section 2). */
  homeAssistant: z
    .strictObject({
      /** false: announce nothing, and remove a discovery an earlier run left. */
      enabled: z.boolean().default(true),
      /** Discovery prefix; must match the controller's (the broker ACL allows `<prefix>/device/<id>/config`). */
      prefix: z
        .string()
        .max(128)
        .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'a plain topic path without wildcards')
        .default('homeassistant'),
      /** How often frame rate, latency and CPU temperature are published (only when changed). */
      stateIntervalS: z.number().int().min(1).max(3600).default(15),
    })
    .prefault({}),
  watchdog: z.strictObject({ outboxStallS: z.number().int().min(1).default(300) }).prefault({}),
  shutdownTimeoutMs: z.number().int().min(100).max(120_000).default(8000),
  /**
   * What pipelines from the desired state may make this device do (the device owner decides, not the
   * controller); the local `pipelines` below are trusted and not checked. A refused pipeline is reported
   * failed with E_PIPELINE_SOURCE_NOT_ALLOWED, the others run. docs/SECURITY.md, agent/src/core/remote-pipelines.ts.
   */
  remotePipelines: z
    .strictObject({
      /** sensor-command sources, and ffmpeg lavfi graphs other than one plain test generator. */
      allowCommandSources: z.boolean().default(false),
      /** file and sensor-file sources and audio file inputs: any path (ffmpeg also takes URLs as paths). */
      allowFileSources: z.boolean().default(false),
      /** Folders that folder sources may watch (the folder or below; absolute). Absent: any folder. */
      allowedFolders: z
        .array(
          z
            .string()
            .min(1)
            .max(4096)
            .regex(/^\/(?!.*(?:^|\/)\.\.?(?:\/|$))/, 'an absolute path without . or .. segments'),
        )
        .max(64)
        .optional(),
      /** Hosts of rtsp, mjpeg and snapshot-url sources: a name, `*.name`, an IP or a CIDR. Absent: any. */
      allowedUrlHosts: z
        .array(
          z.union([
            z
              .string()
              .max(253)
              .regex(/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/),
            z.ipv4(),
            z.ipv6(),
            z.cidrv4(),
            z.cidrv6(),
          ]),
        )
        .max(256)
        .optional(),
    })
    .prefault({}),
  /** Local pipelines, run beside those of the desired state (same schema). */
  pipelines: z.array(pipelineConfigSchema).max(32).default([]),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export const AGENT_ENV_MAP: Record<string, string> = {
  PERCH_STATE_DIR: 'stateDir',
  PERCH_CONTROLLER_URL: 'controllerUrl',
  PERCH_ENROLL_TOKEN: 'enrollToken',
  PERCH_DEVICE_NAME: 'deviceName',
  PERCH_LOG_LEVEL: 'logLevel',
  PERCH_TELEMETRY_INTERVAL_S: 'telemetry.intervalS',
  PERCH_HOME_ASSISTANT_ENABLED: 'homeAssistant.enabled',
  PERCH_HOME_ASSISTANT_PREFIX: 'homeAssistant.prefix',
};

export function loadAgentConfig(options: {
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
}): AgentConfig {
  return loadConfig({
    schema: agentConfigSchema,
    file: options.file,
    fileRequired: options.file !== undefined && options.file !== '/etc/perch/agent.yaml',
    env: options.env ?? process.env,
    envMap: AGENT_ENV_MAP,
    flags: options.flags ?? {},
  }) as AgentConfig;
}
