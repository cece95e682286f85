export { buildApp } from './http/app';
export { startController, initController, type RunningController, type StartOptions } from './controller';
export { serve } from './server';
export {
  loadControllerConfig,
  controllerConfigSchema,
  controllerPaths,
  type ControllerConfig,
} from './config';
export type { AppDeps, AppSettings } from './context';
export { openSqliteStore, type Store } from './db/open';
export { ControllerMetrics } from './metrics';
export { TufRepository, DEFAULT_LIFETIMES, type TufLifetimes } from './tuf/repository';
export { ArtifactStore } from './models/artifacts';
export { EmbeddedBroker } from './mqtt/embedded-broker';
export { ExternalBroker, coalesceAcks } from './mqtt/external-broker';
export type { DeviceBus, InboundMessage } from './mqtt/bus';
export { Ingest, type IngestSink } from './mqtt/ingest';
export { enrollChallenge, type EnrollRequest, type EnrollResult } from './enrollment';
export { mayPublish, maySubscribe } from './mqtt/acl';
export { readTar, writeTar } from './models/tar';
export { revokeDevice } from './routes/devices';
