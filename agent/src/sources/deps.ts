import { systemClock, type Clock } from '@perch/shared';
import { defaultBackoff, type BackoffOptions } from './backoff';
import { silentLogger, type SourceLogger } from './logger';
import { defaultSpawn, type SpawnFn } from './spawn';
import type { SensorMqttClient } from './sensor-mqtt';

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
  /** The agent's connected mqtt.js client; required for sensor-mqtt. */
  readonly mqtt?: SensorMqttClient;
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
  };
}

export function backoffOf(config: { backoff?: BackoffOptions | undefined }): BackoffOptions {
  return config.backoff ?? defaultBackoff;
}
