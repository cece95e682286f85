import { assertId } from '@perch/shared';

/**
 * The device ACL of DESIGN.md for the embedded broker, with the same semantics as the Mosquitto
 * dynamic-security roles in `../broker/dynsec-acl.ts`: a device publishes anywhere in its own subtree
 * except `desired` and `cmd/...` (the agent's Home Assistant state topics live under `<id>/ha/...`),
 * plus its own device-based discovery topic `homeassistant/device/<id>/config`; it subscribes only to
 * its own `desired`, its `cmd/+` and `homeassistant/status` (literally: not one command, no wildcard of its own).
 */
export interface AclOptions {
  prefix: string;
  /** Home Assistant discovery prefix (default `homeassistant`). */
  homeAssistantPrefix?: string;
}

function base(deviceId: string, o: AclOptions): string {
  return `${o.prefix}/v1/devices/${assertId(deviceId, 'device id')}/`;
}

export function mayPublish(deviceId: string, topic: string, o: AclOptions): boolean {
  if (
    topic.includes('+') ||
    topic.includes('#') ||
    topic.includes('\u0000') ||
    topic.split('/').some((l) => l === '')
  )
    return false;
  const ha = o.homeAssistantPrefix ?? 'homeassistant';
  if (topic === `${ha}/device/${deviceId}/config`) return true;
  const own = base(deviceId, o);
  if (!topic.startsWith(own)) return false;
  const rest = topic.slice(own.length);
  return rest !== 'desired' && rest !== 'cmd' && !rest.startsWith('cmd/');
}

/** Exactly the three filters the Mosquitto role grants (`subscribeLiteral`); the agent uses no other. */
export function maySubscribe(deviceId: string, filter: string, o: AclOptions): boolean {
  const own = base(deviceId, o);
  const ha = o.homeAssistantPrefix ?? 'homeassistant';
  return filter === `${own}desired` || filter === `${own}cmd/+` || filter === `${ha}/status`;
}
