import { parseTopic, TOPIC_PUBLISHER } from '@perch/shared';

/**
 * The device ACL of DESIGN.md, as pure functions shared by the embedded broker and the dynamic-security
 * roles of the external one: a device publishes only in its own subtree (never desired or cmd) and
 * subscribes only to its own desired and cmd topics. Home Assistant discovery is allowed under
 * `homeassistant/<component>/<deviceId>/...`, and `homeassistant/status` may be subscribed.
 */
export function mayPublish(deviceId: string, topic: string, prefix: string): boolean {
  if (topic.includes('+') || topic.includes('#')) return false;
  const parsed = parseTopic(topic, prefix);
  if (parsed.ok) return parsed.value.deviceId === deviceId && TOPIC_PUBLISHER[parsed.value.kind] === 'device';
  const parts = topic.split('/');
  return (
    parts.length >= 4 &&
    parts[0] === 'homeassistant' &&
    parts[2] === deviceId &&
    parts.every((p) => p.length > 0)
  );
}

export function maySubscribe(deviceId: string, filter: string, prefix: string): boolean {
  const base = `${prefix}/v1/devices/${deviceId}`;
  if (filter === `${base}/desired` || filter === `${base}/cmd/+` || filter === 'homeassistant/status')
    return true;
  if (filter.startsWith(`${base}/cmd/`)) {
    const parsed = parseTopic(filter, prefix);
    return parsed.ok && parsed.value.kind === 'cmd' && parsed.value.deviceId === deviceId;
  }
  return false;
}

/** The same rules as broker ACL entries (Mosquitto dynamic-security role), for external mode. */
export function deviceAclEntries(
  deviceId: string,
  prefix: string,
): Array<{ acltype: string; topic: string; allow: boolean }> {
  const base = `${prefix}/v1/devices/${deviceId}`;
  const pub = ['reported', 'status', 'telemetry', 'events', 'cmd-result'].map((k) => ({
    acltype: 'publishClientSend',
    topic: `${base}/${k}`,
    allow: true,
  }));
  return [
    ...pub,
    { acltype: 'publishClientSend', topic: `homeassistant/+/${deviceId}/#`, allow: true },
    { acltype: 'subscribePattern', topic: `${base}/desired`, allow: true },
    { acltype: 'subscribePattern', topic: `${base}/cmd/+`, allow: true },
    { acltype: 'subscribePattern', topic: 'homeassistant/status', allow: true },
    { acltype: 'publishClientReceive', topic: `${base}/desired`, allow: true },
    { acltype: 'publishClientReceive', topic: `${base}/cmd/+`, allow: true },
    { acltype: 'publishClientReceive', topic: 'homeassistant/status', allow: true },
  ];
}
