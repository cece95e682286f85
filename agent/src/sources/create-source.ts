import { PerchError } from '@perch/shared';
import type { Source } from '../pipeline/types';
import { AudioSource } from './audio-source';
import { CameraSource } from './camera-source';
import { parseSourceConfig, type SourceConfig, type SourceConfigInput } from './config';
import { resolveDeps, type SourceDeps } from './deps';
import { FolderSource } from './folder-source';
import type { SourceHealthDetail } from './health';
import { SensorCommandSource } from './sensor-command';
import { SensorFileSource } from './sensor-file';
import { SensorMqttSource } from './sensor-mqtt';
import { SnapshotUrlSource } from './snapshot-source';

export { parseSourceConfig };

/** A source as built here: the pipeline's Source with the richer health for telemetry. */
export interface PerchSource extends Source {
  health(): SourceHealthDetail;
}

/**
 * Builds the source a config describes. Nothing runs until `start(onItem)`. Throws E_CONFIG_INVALID for a
 * bad config (including sensor-mqtt with neither a `url` nor an MQTT client in deps).
 */
export function createSource(
  config: SourceConfigInput | SourceConfig | unknown,
  deps: SourceDeps = {},
): PerchSource {
  const cfg = parseSourceConfig(config);
  const d = resolveDeps(deps, cfg);
  switch (cfg.kind) {
    case 'lavfi':
    case 'file':
    case 'rtsp':
    case 'v4l2':
    case 'mjpeg':
      return new CameraSource(cfg, d);
    case 'folder':
      return new FolderSource(cfg, d);
    case 'snapshot-url':
      return new SnapshotUrlSource(cfg, d);
    case 'audio':
      return new AudioSource(cfg, d);
    case 'sensor-command':
      return new SensorCommandSource(cfg, d);
    case 'sensor-file':
      return new SensorFileSource(cfg, d);
    case 'sensor-mqtt':
      if (cfg.url !== undefined) return new SensorMqttSource(cfg, undefined, d);
      if (!d.mqtt) {
        throw new PerchError(
          'E_CONFIG_INVALID',
          'a sensor-mqtt source needs a broker `url` (its own connection) or an MQTT client in deps.mqtt',
        );
      }
      return new SensorMqttSource(cfg, d.mqtt, d);
  }
}
