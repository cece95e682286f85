import {
  DEVICE_ABBREVIATIONS,
  ENTITY_ABBREVIATIONS,
  expandKeys,
  ORIGIN_ABBREVIATIONS,
} from './abbreviations';

/**
 * Home Assistant's documented MQTT discovery rules, as a validator for what Perch publishes
 * (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery and the binary_sensor, sensor
 * and image platform pages):
 *
 * - topic `<prefix>/<component>/[<node_id>/]<object_id>/config`; node_id and object_id are
 *   `[a-zA-Z0-9_-]+`; device-based discovery uses the component `device`;
 * - an empty payload removes what was discovered; otherwise a JSON object;
 * - abbreviations are expanded (a key given abbreviated and in full is an error here);
 * - device-based payloads need `device` (with `identifiers` or `connections`), `origin` (with `name`)
 *   and `components`; component ids follow the object_id rule; each component needs `platform` and
 *   `unique_id`, except a removal stub that holds `platform` only; `device` and `origin` cannot be
 *   overridden in a component; shared options are availability, origin, state_topic,
 *   command_topic, qos, encoding;
 * - per platform: binary_sensor and sensor need `state_topic`, image needs exactly one of
 *   `image_topic` and `url_topic`; `availability` and `availability_topic` exclude each other;
 *   enumerations (availability_mode, entity_category, state_class, device_class) take documented values;
 * - unknown keys are reported: Home Assistant drops or refuses them, either way a mistake.
 */
export const DISCOVERY_ID_PATTERN = /^[a-zA-Z0-9_-]+$/;

export type Platform = 'binary_sensor' | 'sensor' | 'image';

const SHARED_KEYS = [
  'availability',
  'availability_topic',
  'availability_mode',
  'availability_template',
  'payload_available',
  'payload_not_available',
  'state_topic',
  'command_topic',
  'qos',
  'encoding',
];
const ENTITY_COMMON = [
  'platform',
  'unique_id',
  'name',
  'icon',
  'entity_category',
  'enabled_by_default',
  'entity_picture',
  'json_attributes_topic',
  'json_attributes_template',
  'object_id',
  'default_entity_id',
  'device_class',
  ...SHARED_KEYS,
];
const PLATFORM_KEYS: Record<Platform, string[]> = {
  binary_sensor: [
    ...ENTITY_COMMON,
    'value_template',
    'payload_on',
    'payload_off',
    'expire_after',
    'force_update',
    'off_delay',
  ],
  sensor: [
    ...ENTITY_COMMON,
    'value_template',
    'unit_of_measurement',
    'state_class',
    'expire_after',
    'force_update',
    'suggested_display_precision',
    'last_reset_value_template',
    'options',
  ],
  image: [...ENTITY_COMMON, 'image_topic', 'url_topic', 'url_template', 'content_type', 'image_encoding'],
};
const DEVICE_KEYS = [
  'connections',
  'configuration_url',
  'hw_version',
  'identifiers',
  'manufacturer',
  'model',
  'model_id',
  'name',
  'serial_number',
  'suggested_area',
  'sw_version',
  'via_device',
];
const ORIGIN_KEYS = ['name', 'sw_version', 'support_url'];
const AVAILABILITY_KEYS = ['topic', 'payload_available', 'payload_not_available', 'value_template'];

const BINARY_SENSOR_CLASSES = [
  'battery',
  'battery_charging',
  'carbon_monoxide',
  'cold',
  'connectivity',
  'door',
  'garage_door',
  'gas',
  'heat',
  'light',
  'lock',
  'moisture',
  'motion',
  'moving',
  'occupancy',
  'opening',
  'plug',
  'power',
  'presence',
  'problem',
  'running',
  'safety',
  'smoke',
  'sound',
  'tamper',
  'update',
  'vibration',
  'window',
];
/** The sensor device classes Perch may use, with the units Home Assistant accepts for them. */
const SENSOR_CLASS_UNITS: Record<string, Array<string | undefined>> = {
  temperature: ['°C', '°F', 'K'],
  duration: ['d', 'h', 'min', 's', 'ms'],
  timestamp: [undefined],
  frequency: ['Hz', 'kHz', 'MHz', 'GHz'],
  data_size: ['B', 'kB', 'MB', 'GB', 'KiB', 'MiB', 'GiB'],
  enum: [undefined],
};
const STATE_CLASSES = ['measurement', 'measurement_angle', 'total', 'total_increasing'];

export interface ValidationResult {
  ok: boolean;
  issues: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function checkTopicValue(path: string, v: unknown, issues: string[]): void {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\u0000') || Buffer.byteLength(v) > 65535) {
    issues.push(`${path} must be a non-empty MQTT topic`);
  }
}

function checkAvailability(path: string, conf: Record<string, unknown>, issues: string[]): void {
  if (conf.availability !== undefined && conf.availability_topic !== undefined) {
    issues.push(`${path}: availability and availability_topic must not be used together`);
  }
  if (conf.availability_topic !== undefined)
    checkTopicValue(`${path}.availability_topic`, conf.availability_topic, issues);
  if (conf.availability !== undefined) {
    if (!Array.isArray(conf.availability) || conf.availability.length === 0) {
      issues.push(`${path}.availability must be a non-empty list`);
    } else {
      conf.availability.forEach((item, i) => {
        const at = `${path}.availability[${i}]`;
        if (!isObject(item)) return issues.push(`${at} must be a mapping`);
        const { expanded, duplicates } = expandKeys(item, ENTITY_ABBREVIATIONS);
        duplicates.forEach((d) => issues.push(`${at}: ${d} given twice (abbreviated and in full)`));
        Object.keys(expanded)
          .filter((k) => !AVAILABILITY_KEYS.includes(k))
          .forEach((k) => issues.push(`${at}: unknown key ${k}`));
        checkTopicValue(`${at}.topic`, expanded.topic, issues);
        return undefined;
      });
    }
  }
  if (
    conf.availability_mode !== undefined &&
    !['all', 'any', 'latest'].includes(conf.availability_mode as string)
  ) {
    issues.push(`${path}.availability_mode must be all, any or latest`);
  }
}

/** Expands `~` in *_topic values the way Home Assistant does. */
function expandBase(conf: Record<string, unknown>): void {
  const base = conf['~'];
  if (typeof base !== 'string') return;
  for (const [k, v] of Object.entries(conf)) {
    if (!k.endsWith('_topic') || typeof v !== 'string') continue;
    if (v.startsWith('~')) conf[k] = base + v.slice(1);
    else if (v.endsWith('~')) conf[k] = v.slice(0, -1) + base;
  }
  delete conf['~'];
}

function checkComponent(
  id: string,
  raw: unknown,
  shared: Record<string, unknown>,
  issues: string[],
  seen: Set<string>,
): void {
  const at = `components.${id}`;
  if (!DISCOVERY_ID_PATTERN.test(id)) issues.push(`${at}: component id must match [a-zA-Z0-9_-]+`);
  if (!isObject(raw)) return void issues.push(`${at} must be a mapping`);
  const { expanded: conf, duplicates } = expandKeys(raw, ENTITY_ABBREVIATIONS);
  duplicates.forEach((d) => issues.push(`${at}: ${d} given twice (abbreviated and in full)`));
  expandBase(conf);
  const platform = conf.platform;
  if (typeof platform !== 'string') return void issues.push(`${at}: platform (p) is required`);
  if (!(platform in PLATFORM_KEYS))
    return void issues.push(`${at}: platform ${platform} is not one Perch publishes`);
  if (Object.keys(conf).length === 1) return; // a removal stub: `{"p": "<platform>"}`
  for (const k of ['device', 'origin'])
    if (k in conf) issues.push(`${at}: ${k} cannot be overridden in a component`);
  const allowed = PLATFORM_KEYS[platform as Platform];
  Object.keys(conf)
    .filter((k) => !allowed.includes(k) && k !== 'device' && k !== 'origin')
    .forEach((k) => issues.push(`${at}: unknown key ${k}`));
  if (typeof conf.unique_id !== 'string' || conf.unique_id.length === 0) {
    issues.push(`${at}: unique_id is required for device-based discovery`);
  } else if (seen.has(conf.unique_id)) {
    issues.push(`${at}: unique_id ${conf.unique_id} is used by another component`);
  } else seen.add(conf.unique_id);
  const merged = { ...shared, ...conf };
  checkAvailability(at, merged, issues);
  for (const [k, v] of Object.entries(conf))
    if (k.endsWith('_topic')) checkTopicValue(`${at}.${k}`, v, issues);
  for (const k of ['value_template', 'json_attributes_template', 'url_template', 'name', 'icon']) {
    if (k in conf && typeof conf[k] !== 'string') issues.push(`${at}.${k} must be a string`);
  }
  if (
    conf.entity_category !== undefined &&
    !['config', 'diagnostic'].includes(conf.entity_category as string)
  ) {
    issues.push(`${at}.entity_category must be config or diagnostic`);
  }
  if (platform === 'binary_sensor' || platform === 'sensor') {
    if (merged.state_topic === undefined)
      issues.push(`${at}: state_topic (stat_t) is required for ${platform}`);
  }
  if (
    platform === 'binary_sensor' &&
    conf.device_class !== undefined &&
    !BINARY_SENSOR_CLASSES.includes(conf.device_class as string)
  ) {
    issues.push(`${at}.device_class ${String(conf.device_class)} is not a binary_sensor device class`);
  }
  if (platform === 'sensor') {
    if (conf.state_class !== undefined && !STATE_CLASSES.includes(conf.state_class as string)) {
      issues.push(`${at}.state_class must be one of ${STATE_CLASSES.join(', ')}`);
    }
    if (conf.device_class !== undefined) {
      const units = SENSOR_CLASS_UNITS[conf.device_class as string];
      if (!units) issues.push(`${at}.device_class ${String(conf.device_class)} is not one Perch uses`);
      else if (!units.includes(conf.unit_of_measurement as string | undefined)) {
        issues.push(
          `${at}: unit ${String(conf.unit_of_measurement)} does not fit device_class ${String(conf.device_class)}`,
        );
      }
      if (conf.device_class === 'timestamp' && conf.state_class !== undefined) {
        issues.push(`${at}: a timestamp sensor cannot have a state_class`);
      }
    }
  }
  if (platform === 'image') {
    const has = ['image_topic', 'url_topic'].filter((k) => conf[k] !== undefined);
    if (has.length !== 1)
      issues.push(`${at}: image needs exactly one of image_topic (img_t) and url_topic (url_t)`);
    if (conf.image_encoding !== undefined && conf.image_encoding !== 'b64')
      issues.push(`${at}.image_encoding must be b64`);
    if (conf.content_type !== undefined && !/^image\/[a-z0-9.+-]+$/.test(String(conf.content_type))) {
      issues.push(`${at}.content_type must be an image MIME type`);
    }
  }
}

/** Validates one discovery message (topic and raw payload) against the rules above. */
export function validateDiscoveryMessage(
  topic: string,
  payload: string | Buffer,
  options: { discoveryPrefix?: string } = {},
): ValidationResult {
  const issues: string[] = [];
  const prefix = options.discoveryPrefix ?? 'homeassistant';
  const rest = topic.startsWith(`${prefix}/`) ? topic.slice(prefix.length + 1).split('/') : [];
  const component = rest[0];
  if (
    rest.length < 3 ||
    rest.length > 4 ||
    rest.at(-1) !== 'config' ||
    !component ||
    !/^\w+$/.test(component)
  ) {
    issues.push(`topic ${topic} is not <prefix>/<component>/[<node_id>/]<object_id>/config`);
  }
  for (const id of rest.slice(1, -1)) {
    if (!DISCOVERY_ID_PATTERN.test(id))
      issues.push(`topic level ${JSON.stringify(id)} must match [a-zA-Z0-9_-]+`);
  }
  const text = payload.toString();
  if (text.length === 0) return { ok: issues.length === 0, issues }; // removal
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, issues: [...issues, 'payload is not JSON'] };
  }
  if (!isObject(parsed)) return { ok: false, issues: [...issues, 'payload must be a JSON object'] };
  if (component !== 'device') {
    issues.push(`component ${String(component)}: only device-based discovery is checked here`);
    return { ok: false, issues };
  }
  validateDevicePayload(parsed, issues);
  return { ok: issues.length === 0, issues };
}

function validateDevicePayload(parsed: Record<string, unknown>, issues: string[]): void {
  const { expanded: root, duplicates } = expandKeys(parsed, ENTITY_ABBREVIATIONS);
  duplicates.forEach((d) => issues.push(`${d} given twice (abbreviated and in full)`));
  expandBase(root);
  if (!isObject(root.device)) issues.push('device (dev) is required');
  else {
    const { expanded: dev, duplicates: dd } = expandKeys(root.device, DEVICE_ABBREVIATIONS);
    dd.forEach((d) => issues.push(`device: ${d} given twice`));
    Object.keys(dev)
      .filter((k) => !DEVICE_KEYS.includes(k))
      .forEach((k) => issues.push(`device: unknown key ${k}`));
    if (
      dev.configuration_url !== undefined &&
      !/^(https?|homeassistant):\/\/\S+$/.test(String(dev.configuration_url))
    ) {
      issues.push('device.configuration_url must be an http://, https:// or homeassistant:// URL');
    }
    const ids = dev.identifiers;
    const idList = typeof ids === 'string' ? [ids] : Array.isArray(ids) ? ids : [];
    if (idList.length === 0 && !Array.isArray(dev.connections))
      issues.push('device needs identifiers (ids) or connections (cns)');
    if (idList.some((i) => typeof i !== 'string' || i.length === 0))
      issues.push('device identifiers must be non-empty strings');
  }
  if (!isObject(root.origin)) issues.push('origin (o) is required');
  else {
    const { expanded: o } = expandKeys(root.origin, ORIGIN_ABBREVIATIONS);
    if (typeof o.name !== 'string' || o.name.length === 0) issues.push('origin.name is required');
    Object.keys(o)
      .filter((k) => !ORIGIN_KEYS.includes(k))
      .forEach((k) => issues.push(`origin: unknown key ${k}`));
  }
  const shared: Record<string, unknown> = {};
  for (const k of Object.keys(root)) {
    if (k === 'device' || k === 'origin' || k === 'components') continue;
    if (SHARED_KEYS.includes(k)) shared[k] = root[k];
    else issues.push(`${k} is not a shared option of device-based discovery`);
  }
  checkAvailability('shared', shared, issues);
  if (!isObject(root.components) || Object.keys(root.components).length === 0) {
    issues.push('components (cmps) must be a non-empty mapping');
    return;
  }
  const seen = new Set<string>();
  for (const [id, conf] of Object.entries(root.components)) checkComponent(id, conf, shared, issues, seen);
}
