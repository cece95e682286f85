import { createHash } from 'node:crypto';
import { assertId, DEFAULT_PREFIX, PerchError, topics } from '@perch/shared';

/**
 * Where Perch publishes Home Assistant state: under the device's own subtree
 * (`{prefix}/v1/devices/{id}/ha/...`), which the device ACL lets it publish (it only excludes
 * `desired` and `cmd`). The discovery payload points Home Assistant at these topics.
 */
export interface HaTopicOptions {
  topicPrefix?: string;
  discoveryPrefix?: string;
}

const DISCOVERY_PREFIX = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/**
 * A label as a topic level and object-id part: `[a-z0-9_]`, at most 40 characters. Labels that are
 * not already in that form get a short hash of the original, so `Cat` and `cat` (or two long labels
 * with the same start) never collide, and the result is the same on every start.
 */
export function labelSlug(label: string): string {
  const plain = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  if (plain === label && plain.length > 0) return plain;
  const hash = createHash('sha256').update(label, 'utf8').digest('hex').slice(0, 8);
  return plain.length > 0 ? `${plain.slice(0, 31)}_${hash}` : `label_${hash}`;
}

/** `<discoveryPrefix>/device/<deviceId>/config`: the device id is the discovery node id. */
export function discoveryTopic(deviceId: string, options: HaTopicOptions = {}): string {
  const prefix = options.discoveryPrefix ?? 'homeassistant';
  if (!DISCOVERY_PREFIX.test(prefix)) {
    throw new PerchError(
      'E_TOPIC_UNKNOWN',
      `Home Assistant discovery prefix ${JSON.stringify(prefix)} is not a plain topic path`,
    );
  }
  return `${prefix}/device/${assertId(deviceId, 'device id')}/config`;
}

/** Home Assistant's birth and last-will topic. */
export function birthTopic(options: HaTopicOptions = {}): string {
  return `${options.discoveryPrefix ?? 'homeassistant'}/status`;
}

function haBase(deviceId: string, options: HaTopicOptions): string {
  // The subtree builder validates the id and prefix; `/#` becomes `/ha`.
  return topics.subtree(deviceId, options.topicPrefix ?? DEFAULT_PREFIX).replace(/#$/, 'ha');
}

/** State topics of one device. Pipeline ids are validated ids; labels go through labelSlug. */
export function haStateTopics(deviceId: string, options: HaTopicOptions = {}) {
  const base = haBase(deviceId, options);
  const pipeline = (id: string) => `${base}/${assertId(id, 'pipeline id')}`;
  return {
    base,
    detected: (pipelineId: string, label: string) => `${pipeline(pipelineId)}/${labelSlug(label)}/detected`,
    count: (pipelineId: string, label: string) => `${pipeline(pipelineId)}/${labelSlug(label)}/count`,
    fps: (pipelineId: string) => `${pipeline(pipelineId)}/fps`,
    latency: (pipelineId: string) => `${pipeline(pipelineId)}/latency`,
    snapshot: (pipelineId: string) => `${pipeline(pipelineId)}/snapshot`,
    snapshotUrl: (pipelineId: string) => `${pipeline(pipelineId)}/snapshot_url`,
    cpuTemperature: () => `${base}/cpu_temperature`,
    lastEvent: () => `${base}/last_event`,
  };
}
export type HaStateTopics = ReturnType<typeof haStateTopics>;
