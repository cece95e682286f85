/**
 * Pipeline sources: camera (ffmpeg), still images (folder, snapshot URL), audio (ffmpeg) and sensors
 * (command, file, MQTT). `createSource(config, deps)` is the entry point; the rest is exported for the
 * agent core and tests.
 */
export { createSource, parseSourceConfig, type PerchSource } from './create-source';
export {
  sourceConfigSchema,
  SOURCE_KINDS,
  type SourceKind,
  type SourceConfig,
  type SourceConfigInput,
  type CameraSourceConfig,
  type FolderSourceConfig,
  type SnapshotUrlSourceConfig,
  type AudioSourceConfig,
  type SensorSourceConfig,
} from './config';
export type { SourceDeps } from './deps';
export type { SourceHealthDetail, SourceErrorInfo } from './health';
export type { SpawnFn, ChildLike } from './spawn';
export { defaultSpawn } from './spawn';
export type { SensorMqttClient } from './sensor-mqtt';
export type { SourceLogger } from './logger';
export { backoffDelay, defaultBackoff, type BackoffOptions } from './backoff';
