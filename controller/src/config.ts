import path from 'node:path';
import { z } from 'zod';
import { loadConfig } from '@perch/shared';

/** In mode `mosquitto`, the client the controller creates for itself with the admin login. */
export const MOSQUITTO_RUNTIME_USERNAME = 'perch-controller';

export const controllerConfigSchema = z
  .strictObject({
    home: z.string().min(1),
    logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    http: z
      .strictObject({
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** URL devices use; defaults to http://127.0.0.1:<port>. */
        publicUrl: z.url().optional(),
      })
      .prefault({}),
    mqtt: z
      .strictObject({
        /**
         * `embedded`: the in-process aedes broker. `mosquitto`: Mosquitto 2 with the dynamic-security
         * plugin (deploy/mosquitto); the controller provisions device clients and roles and kicks revoked
         * devices. `external`: any MQTT 5 broker whose users and ACLs the operator manages.
         */
        mode: z.enum(['embedded', 'external', 'mosquitto']).default('embedded'),
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(1883),
        /** URL devices use; defaults to mqtt://127.0.0.1:<port> (embedded) or `url` (external). */
        publicUrl: z.string().min(1).optional(),
        /**
         * External and mosquitto modes: the broker URL and the controller's credentials (mosquitto mode:
         * the dynamic-security admin client from `mosquitto_ctrl dynsec init`).
         */
        url: z.string().min(1).optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        /** Alias: `mode: 'external'` with `dynamicSecurity: true` is mode `mosquitto`. */
        dynamicSecurity: z.boolean().optional(),
        shareGroup: z
          .string()
          .regex(/^[a-z0-9-]{1,32}$/)
          .optional(),
        maxPacketBytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(256 * 1024),
      })
      .prefault({}),
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/)
      .default('perch'),
    limits: z
      .strictObject({
        bodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(1024 * 1024),
        modelBytes: z
          .number()
          .int()
          .min(1024)
          .max(4 * 1024 ** 3)
          .default(512 * 1024 * 1024),
        sideFileBytes: z
          .number()
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(4 * 1024 * 1024),
      })
      .prefault({}),
    retention: z
      .strictObject({
        telemetryDays: z.number().int().min(1).max(3650).default(30),
        /** Events are kept this long after the controller received them. */
        eventsDays: z.number().int().min(1).max(3650).default(90),
        auditDays: z.number().int().min(1).max(3650).default(365),
        cron: z.string().min(1).default('17 * * * *'),
      })
      .prefault({}),
    homeAssistant: z
      .strictObject({
        /** Home Assistant's MQTT discovery prefix; a revoked device's discovery is cleared under it. */
        discoveryPrefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/)
          .default('homeassistant'),
      })
      .prefault({}),
    webhooks: z
      .strictObject({
        /** Attempts per delivery before it becomes a dead letter. */
        maxAttempts: z.number().int().min(1).max(100).default(8),
        /** Delay after the first failure; doubles per failure (with jitter) up to backoffMaxMs. */
        backoffBaseMs: z.number().int().min(1).max(86_400_000).default(10_000),
        backoffMaxMs: z.number().int().min(1).max(86_400_000).default(3_600_000),
        /** Per-attempt deadline. */
        timeoutMs: z.number().int().min(1).max(300_000).default(10_000),
      })
      .prefault({}),
    tuf: z
      .strictObject({
        /** When to check expiry and re-sign the timestamp (and snapshot/targets when due). */
        refreshCron: z.string().min(1).default('*/10 * * * *'),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const mode = brokerMode(c.mqtt);
    if (mode !== 'embedded') {
      const missing = (['url', 'username', 'password'] as const).filter((k) => !c.mqtt[k]);
      if (missing.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['mqtt', missing[0] ?? 'url'],
          message:
            mode === 'mosquitto'
              ? `mqtt.mode 'mosquitto' needs mqtt.url, mqtt.username and mqtt.password (the dynamic-security admin client from \`mosquitto_ctrl dynsec init\`); missing: ${missing.map((k) => `mqtt.${k}`).join(', ')}`
              : `mqtt.mode 'external' needs mqtt.url, mqtt.username and mqtt.password (the controller's own broker login); missing: ${missing.map((k) => `mqtt.${k}`).join(', ')}`,
        });
      }
    }
    if (mode === 'mosquitto' && c.mqtt.username === MOSQUITTO_RUNTIME_USERNAME) {
      ctx.addIssue({
        code: 'custom',
        path: ['mqtt', 'username'],
        message: `mqtt.username is the dynamic-security admin client; '${MOSQUITTO_RUNTIME_USERNAME}' is the name of the runtime client the controller creates with it, so the admin must have another name (e.g. 'perch-admin', as in deploy/mosquitto/README.md)`,
      });
    }
    if (c.mqtt.mode === 'mosquitto' && c.mqtt.dynamicSecurity === false) {
      ctx.addIssue({
        code: 'custom',
        path: ['mqtt', 'dynamicSecurity'],
        message:
          "mqtt.mode 'mosquitto' always uses dynamic security; for a broker without it use mqtt.mode 'external'",
      });
    }
    if (c.mqtt.mode === 'embedded' && c.mqtt.dynamicSecurity !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['mqtt', 'dynamicSecurity'],
        message: "mqtt.dynamicSecurity applies to an external broker only; use mqtt.mode 'mosquitto'",
      });
    }
    if (c.webhooks.backoffMaxMs < c.webhooks.backoffBaseMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhooks', 'backoffMaxMs'],
        message: 'webhooks.backoffMaxMs must be at least webhooks.backoffBaseMs',
      });
    }
  });

/** The effective broker mode: `external` with `dynamicSecurity: true` is an alias of `mosquitto`. */
export function brokerMode(mqtt: {
  mode: 'embedded' | 'external' | 'mosquitto';
  dynamicSecurity?: boolean | undefined;
}): 'embedded' | 'external' | 'mosquitto' {
  return mqtt.mode === 'external' && mqtt.dynamicSecurity === true ? 'mosquitto' : mqtt.mode;
}

export type ControllerConfig = z.infer<typeof controllerConfigSchema>;

export const CONTROLLER_ENV: Record<string, string> = {
  PERCH_HOME: 'home',
  PERCH_LOG_LEVEL: 'logLevel',
  PERCH_HTTP_HOST: 'http.host',
  PERCH_HTTP_PORT: 'http.port',
  PERCH_PUBLIC_URL: 'http.publicUrl',
  PERCH_MQTT_MODE: 'mqtt.mode',
  PERCH_MQTT_HOST: 'mqtt.host',
  PERCH_MQTT_PORT: 'mqtt.port',
  PERCH_MQTT_PUBLIC_URL: 'mqtt.publicUrl',
  PERCH_MQTT_URL: 'mqtt.url',
  PERCH_MQTT_USERNAME: 'mqtt.username',
  PERCH_MQTT_PASSWORD: 'mqtt.password',
  PERCH_MQTT_DYNAMIC_SECURITY: 'mqtt.dynamicSecurity',
  PERCH_TOPIC_PREFIX: 'topicPrefix',
  PERCH_HA_DISCOVERY_PREFIX: 'homeAssistant.discoveryPrefix',
};

export const CONTROLLER_DEFAULTS = {
  home: './.perch/controller',
  http: {},
  mqtt: {},
  limits: {},
  retention: {},
  homeAssistant: {},
  webhooks: {},
  tuf: {},
};

/** Defaults < file < PERCH_* environment < flags; validated once, frozen. */
export function loadControllerConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> } = {},
): ControllerConfig {
  const cfg = loadConfig({
    schema: controllerConfigSchema,
    defaults: CONTROLLER_DEFAULTS,
    file: options.file,
    fileRequired: options.file !== undefined,
    env: options.env,
    envMap: CONTROLLER_ENV,
    flags: options.flags,
  });
  return cfg;
}

/** Every path the controller writes, from the data folder. */
export function controllerPaths(home: string) {
  const root = path.resolve(home);
  return {
    root,
    database: path.join(root, 'controller.db'),
    adminToken: path.join(root, 'admin-token'),
    tuf: path.join(root, 'tuf'),
    artifacts: path.join(root, 'artifacts'),
    /** The controller's MQTT client id in external and mosquitto modes, made once and kept. */
    mqttClientId: path.join(root, 'mqtt-client-id'),
  };
}
