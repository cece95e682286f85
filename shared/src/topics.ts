import { assertId, isValidId } from './ids';
import { fail, ok, PerchError, type Result } from './errors';

/**
 * The Perch MQTT topic tree. Call sites never concatenate topic strings: they use these builders,
 * which validate every id, and `parseTopic` for the way back.
 *
 *   {prefix}/v1/devices/{id}/desired | reported | status | telemetry | events | cmd/{name} | cmd-result
 */
export const PROTOCOL_VERSION = 'v1';
export const DEFAULT_PREFIX = 'perch';

/** Topic kinds that carry one message kind each. */
export const TOPIC_KINDS = [
  'desired',
  'reported',
  'status',
  'telemetry',
  'events',
  'cmd',
  'cmd-result',
] as const;
export type TopicKind = (typeof TOPIC_KINDS)[number];

/** Who may publish each kind: the controller, or the device that owns the subtree. */
export const TOPIC_PUBLISHER: Readonly<Record<TopicKind, 'controller' | 'device'>> = {
  desired: 'controller',
  cmd: 'controller',
  reported: 'device',
  status: 'device',
  telemetry: 'device',
  events: 'device',
  'cmd-result': 'device',
};

export interface ParsedTopic {
  kind: TopicKind;
  deviceId: string;
  /** The command name, for `cmd` topics. */
  name?: string;
}

const PREFIX_PATTERN = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

function checkPrefix(prefix: string): string {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new PerchError(
      'E_TOPIC_UNKNOWN',
      `topic prefix ${JSON.stringify(prefix)} is not a plain topic path`,
    );
  }
  return prefix;
}

function base(deviceId: string, prefix: string): string {
  return `${checkPrefix(prefix)}/${PROTOCOL_VERSION}/devices/${assertId(deviceId, 'device id')}`;
}

/** Topic builders. Each validates the ids it is given and throws E_INVALID_ID on a bad one. */
export const topics = {
  desired: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/desired`,
  reported: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/reported`,
  status: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/status`,
  telemetry: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/telemetry`,
  events: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/events`,
  cmd: (deviceId: string, name: string, prefix = DEFAULT_PREFIX) =>
    `${base(deviceId, prefix)}/cmd/${assertId(name, 'command name')}`,
  /** Subscription filter for every command of one device. */
  cmdAll: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/cmd/+`,
  cmdResult: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/cmd-result`,
  /** The device's whole subtree, as a subscription filter. */
  subtree: (deviceId: string, prefix = DEFAULT_PREFIX) => `${base(deviceId, prefix)}/#`,
  /** Subscription filter for one kind across all devices (e.g. the controller's ingest). */
  all: (kind: Exclude<TopicKind, 'cmd'>, prefix = DEFAULT_PREFIX) =>
    `${checkPrefix(prefix)}/${PROTOCOL_VERSION}/devices/+/${kind}`,
} as const;

const KIND_SET: ReadonlySet<string> = new Set(TOPIC_KINDS);

/** Parses a concrete topic of the Perch tree. Never throws. */
export function parseTopic(topic: string, prefix = DEFAULT_PREFIX): Result<ParsedTopic> {
  const unknown = () =>
    fail(new PerchError('E_TOPIC_UNKNOWN', `not a Perch topic: ${JSON.stringify(topic.slice(0, 200))}`));
  if (typeof topic !== 'string' || !PREFIX_PATTERN.test(prefix)) return unknown();
  const head = `${prefix}/${PROTOCOL_VERSION}/devices/`;
  if (!topic.startsWith(head)) return unknown();
  // {deviceId}/{kind}[/{name}] after the head, cut with indexOf: this runs for every ingested message.
  const idEnd = topic.indexOf('/', head.length);
  if (idEnd === -1) return unknown();
  const kindEnd = topic.indexOf('/', idEnd + 1);
  if (kindEnd !== -1 && topic.indexOf('/', kindEnd + 1) !== -1) return unknown();
  const deviceId = topic.slice(head.length, idEnd);
  const kind = kindEnd === -1 ? topic.slice(idEnd + 1) : topic.slice(idEnd + 1, kindEnd);
  const name = kindEnd === -1 ? undefined : topic.slice(kindEnd + 1);
  if (!isValidId(deviceId)) {
    return fail(new PerchError('E_INVALID_ID', `device id in topic does not match the id pattern`));
  }
  if (kind === 'cmd') {
    if (name === undefined) return unknown();
    if (!isValidId(name))
      return fail(new PerchError('E_INVALID_ID', 'command name in topic is not a valid id'));
    return ok({ kind: 'cmd', deviceId, name });
  }
  if (name !== undefined || !KIND_SET.has(kind)) return unknown();
  return ok({ kind: kind as TopicKind, deviceId });
}

/** Throws E_TOPIC_WILDCARD if a topic to be published contains + or #, or is empty. */
export function assertPublishable(topic: string): string {
  if (topic.length === 0 || topic.includes('+') || topic.includes('#') || topic.includes('\u0000')) {
    throw new PerchError('E_TOPIC_WILDCARD', `refusing to publish to ${JSON.stringify(topic.slice(0, 200))}`);
  }
  return topic;
}
