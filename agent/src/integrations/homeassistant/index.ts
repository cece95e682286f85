/**
 * Home Assistant MQTT discovery for the agent: device-based discovery payloads, the state topics
 * they point at, a validator of Home Assistant's discovery rules, and the publisher that keeps
 * them in the broker. See docs/INTEGRATIONS.md.
 */
export {
  buildComponents,
  buildDiscovery,
  componentIds,
  uniqueId,
  DEFAULT_MAX_LABELS,
  ORIGIN_NAME,
  type Component,
  type DiscoveryOptions,
  type HaDevice,
  type HaPipeline,
} from './discovery';
export {
  birthTopic,
  discoveryTopic,
  haStateTopics,
  labelSlug,
  type HaStateTopics,
  type HaTopicOptions,
} from './ha-topics';
export {
  HomeAssistantPublisher,
  MemoryHaStateStore,
  mqttClientLink,
  type HaLink,
  type HaPublishedState,
  type HaPublisherStats,
  type HaStateStore,
  type HomeAssistantPublisherOptions,
} from './publisher';
export { validateDiscoveryMessage, DISCOVERY_ID_PATTERN, type ValidationResult } from './validate';
export {
  DEVICE_ABBREVIATIONS,
  ENTITY_ABBREVIATIONS,
  ORIGIN_ABBREVIATIONS,
  expandKeys,
} from './abbreviations';
