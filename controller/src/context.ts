import type { Clock, Logger } from '@perch/shared';
import type { Store } from './db/open';
import type { ControllerMetrics } from './metrics';
import type { DeviceBus } from './mqtt/bus';
import type { TufRepository } from './tuf/repository';
import type { ArtifactStore } from './models/artifacts';
import type { WebhookDispatcher } from './integrations/webhooks';

export interface AppSettings {
  /** URL devices use to reach this controller (returned at enrollment). */
  publicUrl: string;
  /** MQTT URL devices connect to (returned at enrollment). */
  mqttUrl: string;
  topicPrefix: string;
  /** Largest JSON body accepted, in bytes. */
  bodyLimitBytes: number;
  /** Largest model file in an upload, in bytes. */
  modelLimitBytes: number;
  /** Largest spec, labels or sample file in an upload, in bytes. */
  sideFileLimitBytes: number;
  /** How far an enrollment timestamp may be from the controller clock. */
  enrollSkewMs: number;
  /** Home Assistant discovery prefix; a revoked device's discovery topic is cleared under it. */
  homeAssistantPrefix: string;
}

/** Everything the HTTP app needs; built by the composition root (controller.ts) or by a test. */
export interface AppDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics: ControllerMetrics;
  settings: AppSettings;
  bus: DeviceBus;
  tuf: TufRepository;
  artifacts: ArtifactStore;
  webhooks: WebhookDispatcher;
}
