import path from 'node:path';
import { z } from 'zod';
import { loadConfig } from '@perch/shared';

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
        mode: z.enum(['embedded', 'external']).default('embedded'),
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(1883),
        /** URL devices use; defaults to mqtt://127.0.0.1:<port> (embedded) or `url` (external). */
        publicUrl: z.string().min(1).optional(),
        /** External mode: the broker and the controller's own credentials. */
        url: z.string().min(1).optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        dynamicSecurity: z.boolean().default(true),
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
        cron: z.string().min(1).default('17 * * * *'),
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
    if (c.mqtt.mode === 'external' && (!c.mqtt.url || !c.mqtt.username || !c.mqtt.password)) {
      ctx.addIssue({
        code: 'custom',
        path: ['mqtt', 'url'],
        message: 'external mode needs mqtt.url, mqtt.username and mqtt.password',
      });
    }
  });

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
  PERCH_TOPIC_PREFIX: 'topicPrefix',
};

export const CONTROLLER_DEFAULTS = {
  home: './.perch/controller',
  http: {},
  mqtt: {},
  limits: {},
  retention: {},
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
  };
}
