import { assertId, DEFAULT_PREFIX, topics } from '@perch/shared';

/**
 * The ACLs of DESIGN.md as Mosquitto dynamic-security role entries. Pure functions: the client in
 * dynsec.ts sends them, and unit tests read them without a broker.
 *
 * How the plugin evaluates them (Mosquitto 2.0): a client's roles' ACLs are checked in descending
 * `priority`; the first entry whose topic matches decides. Anything unmatched falls back to the
 * broker-wide default access (`mosquitto_ctrl dynsec init` sets publish and subscribe to deny).
 * So the denials for `desired` and `cmd` carry a higher priority than the subtree's allow.
 */
export type DynsecAclType =
  | 'publishClientSend'
  | 'publishClientReceive'
  | 'subscribeLiteral'
  | 'subscribePattern'
  | 'unsubscribeLiteral'
  | 'unsubscribePattern';

export interface DynsecAcl {
  acltype: DynsecAclType;
  topic: string;
  allow: boolean;
  priority: number;
}

export interface AclOptions {
  /** Perch topic prefix (default `perch`). */
  prefix?: string;
  /**
   * Home Assistant discovery prefix, or false when devices must not publish discovery. The device
   * may publish only its own device-based discovery topic `<prefix>/device/<deviceId>/config` and
   * subscribe to `<prefix>/status` (the birth message).
   */
  homeAssistantPrefix?: string | false;
}

const DENY = 10;
const ALLOW = 0;
const HA_PREFIX = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

function haPrefix(options: AclOptions): string | false {
  const prefix = options.homeAssistantPrefix ?? 'homeassistant';
  if (prefix !== false && !HA_PREFIX.test(prefix)) {
    throw new TypeError(`Home Assistant prefix ${JSON.stringify(prefix)} is not a plain topic path`);
  }
  return prefix;
}

/**
 * The fleet topic: the controller re-publishes every newly stored event here (payload = the event
 * plus `deviceId`, QoS 1, not retained) for consumers that want one subscription. Only the controller
 * publishes; devices can neither publish nor subscribe; integration clients only read.
 */
export function fleetEventsTopic(prefix = DEFAULT_PREFIX): string {
  // topics.all validates the prefix.
  return topics.all('events', prefix).replace(/\/devices\/\+\/events$/, '/fleet/events');
}

/** Role that lets an integration client (Home Assistant, a data pipeline) read the fleet topic. */
export const INTEGRATIONS_ROLE = 'perch-integrations';

/** Read-only access to the fleet topic, for clients an operator attaches INTEGRATIONS_ROLE to. */
export function integrationsRoleAcls(options: AclOptions = {}): DynsecAcl[] {
  const fleet = fleetEventsTopic(options.prefix ?? DEFAULT_PREFIX);
  return [
    { acltype: 'subscribeLiteral', topic: fleet, allow: true, priority: ALLOW },
    { acltype: 'subscribePattern', topic: `$share/+/${fleet}`, allow: true, priority: ALLOW },
    { acltype: 'publishClientReceive', topic: fleet, allow: true, priority: ALLOW },
  ];
}

/** The role name of a device; the client's username is the device id itself. */
export function deviceRoleName(deviceId: string): string {
  return `perch-device-${assertId(deviceId, 'device id')}`;
}

/** Home Assistant's device-based discovery topic of one agent (node id = device id). */
export function homeAssistantDiscoveryTopic(deviceId: string, prefix = 'homeassistant'): string {
  return `${prefix}/device/${assertId(deviceId, 'device id')}/config`;
}

/**
 * A device publishes in its own subtree except `desired` and `cmd/...`, and subscribes only to its
 * own `desired` and `cmd/+` (plus Home Assistant's birth topic when discovery is on).
 */
export function deviceRoleAcls(deviceId: string, options: AclOptions = {}): DynsecAcl[] {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const desired = topics.desired(deviceId, prefix);
  const cmdAll = topics.cmdAll(deviceId, prefix);
  const cmdTree = cmdAll.replace(/\+$/, '#');
  const acls: DynsecAcl[] = [
    { acltype: 'publishClientSend', topic: desired, allow: false, priority: DENY },
    // `cmd/#` also matches `cmd` itself in Mosquitto's matcher.
    { acltype: 'publishClientSend', topic: cmdTree, allow: false, priority: DENY },
    { acltype: 'publishClientSend', topic: topics.subtree(deviceId, prefix), allow: true, priority: ALLOW },
    { acltype: 'subscribeLiteral', topic: desired, allow: true, priority: ALLOW },
    { acltype: 'subscribeLiteral', topic: cmdAll, allow: true, priority: ALLOW },
    // Explicit, so delivery does not depend on the broker-wide publishClientReceive default.
    { acltype: 'publishClientReceive', topic: desired, allow: true, priority: ALLOW },
    { acltype: 'publishClientReceive', topic: cmdAll, allow: true, priority: ALLOW },
  ];
  const ha = haPrefix(options);
  if (ha !== false) {
    const status = `${ha}/status`;
    acls.push(
      {
        acltype: 'publishClientSend',
        topic: homeAssistantDiscoveryTopic(deviceId, ha),
        allow: true,
        priority: ALLOW,
      },
      { acltype: 'subscribeLiteral', topic: status, allow: true, priority: ALLOW },
      { acltype: 'publishClientReceive', topic: status, allow: true, priority: ALLOW },
    );
  }
  return acls;
}

/**
 * The controller's runtime client: publishes desired state and commands to every device, reads
 * everything devices publish (also through `$share/...` subscriptions across replicas), and clears
 * a revoked device's retained discovery and status.
 */
export function controllerRoleAcls(options: AclOptions = {}): DynsecAcl[] {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  // topics.all validates the prefix; the device level is a wildcard here.
  const devices = topics.all('status', prefix).replace(/\/\+\/status$/, '');
  const acls: DynsecAcl[] = [
    { acltype: 'publishClientSend', topic: `${devices}/+/desired`, allow: true, priority: ALLOW },
    { acltype: 'publishClientSend', topic: `${devices}/+/cmd/+`, allow: true, priority: ALLOW },
    { acltype: 'publishClientSend', topic: `${devices}/+/status`, allow: true, priority: ALLOW },
    { acltype: 'publishClientSend', topic: fleetEventsTopic(prefix), allow: true, priority: ALLOW },
    { acltype: 'subscribePattern', topic: `${devices}/#`, allow: true, priority: ALLOW },
    { acltype: 'subscribePattern', topic: `$share/+/${devices}/#`, allow: true, priority: ALLOW },
    { acltype: 'publishClientReceive', topic: `${devices}/#`, allow: true, priority: ALLOW },
  ];
  const ha = haPrefix(options);
  if (ha !== false) {
    acls.push({ acltype: 'publishClientSend', topic: `${ha}/device/+/config`, allow: true, priority: ALLOW });
  }
  return acls;
}
