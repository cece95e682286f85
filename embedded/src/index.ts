export {
  startEmbedded,
  DEMO_DEVICE,
  DEMO_MODEL,
  DEMO_PIPELINE,
  type EmbeddedOptions,
  type RunningEmbedded,
} from './launcher';
export { resolveDemoSource, type DemoSource } from './demo-source';
export { DemoFeeder, listImages } from './demo-feeder';
export { choosePort, portInUse, type PortChoice } from './ports';
