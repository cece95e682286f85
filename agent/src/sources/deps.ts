import { systemClock, type Clock } from '@perch/shared';
import { defaultBackoff, type BackoffOptions } from './backoff';
import { silentLogger, type SourceLogger } from './logger';
import { defaultSpawn, type SpawnFn } from './spawn';
import { defaultSensorMqttConnect, type SensorMqttClient, type SensorMqttConnect } from './sensor-mqtt';

/** What sources take from the world; every field is a seam with a production default. */
export interface SourceDeps {
  /** Source id for health and logs; default: the config's `id`, else its kind. */
  readonly id?: string;
  readonly clock?: Clock;
  /** How ffmpeg and sensor commands are started. */
  readonly spawn?: SpawnFn;
  /** The ffmpeg binary; default `ffmpeg` on PATH. */
  readonly ffmpegPath?: string;
  readonly logger?: SourceLogger;
  /** Random numbers for backoff jitter. */
  readonly random?: () => number;
  /** HTTP for snapshot URLs; default the global fetch. */
  readonly fetch?: typeof fetch;
  /** A connected mqtt.js client shared with the embedder; used by a sensor-mqtt source without `url`. */
  readonly mqtt?: SensorMqttClient;
  /** Opens the own connection of a sensor-mqtt source with `url`; default mqtt.js `connect`. */
  readonly mqttConnect?: SensorMqttConnect;
}

export interface ResolvedDeps {
  readonly id: string;
  readonly clock: Clock;
  readonly spawn: SpawnFn;
  readonly ffmpegPath: string;
  readonly logger: SourceLogger;
  readonly random: () => number;
  readonly fetch: typeof fetch;
  readonly mqtt: SensorMqttClient | undefined;
  readonly mqttConnect: SensorMqttConnect;
}

export function resolveDeps(
  deps: SourceDeps,
  config: { kind: string; id?: string | undefined },
): ResolvedDeps {
  return {
    id: deps.id ?? config.id ?? config.kind,
    clock: deps.clock ?? systemClock,
    spawn: deps.spawn ?? defaultSpawn,
    ffmpegPath: deps.ffmpegPath ?? 'ffmpeg',
    logger: deps.logger ?? silentLogger,
    random: deps.random ?? Math.random,
    fetch: deps.fetch ?? globalThis.fetch,
    mqtt: deps.mqtt,
    mqttConnect: deps.mqttConnect ?? defaultSensorMqttConnect,
  };
}

export function backoffOf(config: { backoff?: BackoffOptions | undefined }): BackoffOptions {
  return config.backoff ?? defaultBackoff;
}
