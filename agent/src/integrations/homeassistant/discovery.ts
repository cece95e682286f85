import { assertId, DEFAULT_PREFIX, topics } from '@perch/shared';
import { discoveryTopic, haStateTopics, labelSlug, type HaTopicOptions } from './ha-topics';

/** One running pipeline as Home Assistant should see it. */
export interface HaPipeline {
  id: string;
  /** Shown in entity names; defaults to the id. */
  name?: string;
  /** Labels to expose (the pipeline's rule labels, or the model's labels). */
  labels: readonly string[];
  /** Expose the latest snapshot as an `image` entity. */
  snapshots?: boolean;
}

export interface HaDevice {
  deviceId: string;
  /** Device name in Home Assistant; defaults to `Perch <id>`. */
  name?: string;
  model?: string;
  hwVersion?: string;
  /** Agent version (device `sw` and origin `sw`). */
  swVersion: string;
  /** Link to the device's page on the controller dashboard. */
  configurationUrl?: string;
}

export interface DiscoveryOptions extends HaTopicOptions {
  /**
   * `image`: snapshots are published as raw JPEG bytes on an image topic (needs a broker
   * max_packet_size that fits them). `url`: the agent publishes a URL (e.g. the controller's
   * snapshot endpoint) and Home Assistant fetches it.
   */
  snapshotMode?: 'image' | 'url';
  /** More labels per pipeline than this are left out (and logged by the publisher). */
  maxLabelsPerPipeline?: number;
}

export const ORIGIN_NAME = 'Perch';
export const DEFAULT_MAX_LABELS = 100;

export type Component = Record<string, unknown> & { p: string };

/** Component ids (object ids): stable across restarts and upgrades, as they derive only from ids and labels. */
export const componentIds = {
  detected: (pipelineId: string, label: string) => `${pipelineId}_${labelSlug(label)}_detected`,
  count: (pipelineId: string, label: string) => `${pipelineId}_${labelSlug(label)}_count`,
  fps: (pipelineId: string) => `${pipelineId}_fps`,
  latency: (pipelineId: string) => `${pipelineId}_latency`,
  snapshot: (pipelineId: string) => `${pipelineId}_snapshot`,
  cpuTemperature: () => 'cpu_temperature',
  lastEvent: () => 'last_event',
};

/** `perch_<deviceId>_<componentId>`: globally unique, and the same on every start. */
export function uniqueId(deviceId: string, componentId: string): string {
  return `perch_${deviceId}_${componentId}`;
}

/** The components of one device, keyed by component id. */
export function buildComponents(
  device: HaDevice,
  pipelines: readonly HaPipeline[],
  options: DiscoveryOptions = {},
): Record<string, Component> {
  const id = assertId(device.deviceId, 'device id');
  const t = haStateTopics(id, options);
  const max = options.maxLabelsPerPipeline ?? DEFAULT_MAX_LABELS;
  const out: Record<string, Component> = {};
  const add = (componentId: string, c: Component) => {
    out[componentId] = { ...c, uniq_id: uniqueId(id, componentId) };
  };
  for (const p of pipelines) {
    assertId(p.id, 'pipeline id');
    const name = p.name ?? p.id;
    for (const label of [...new Set(p.labels)].slice(0, max)) {
      add(componentIds.detected(p.id, label), {
        p: 'binary_sensor',
        name: `${name} ${label}`,
        dev_cla: 'occupancy',
        stat_t: t.detected(p.id, label),
        pl_on: 'ON',
        pl_off: 'OFF',
      });
      add(componentIds.count(p.id, label), {
        p: 'sensor',
        name: `${name} ${label} count`,
        ic: 'mdi:counter',
        stat_t: t.count(p.id, label),
        stat_cla: 'measurement',
      });
    }
    add(componentIds.fps(p.id), {
      p: 'sensor',
      name: `${name} frame rate`,
      ic: 'mdi:speedometer',
      stat_t: t.fps(p.id),
      unit_of_meas: 'fps',
      stat_cla: 'measurement',
      sug_dsp_prc: 1,
      ent_cat: 'diagnostic',
    });
    add(componentIds.latency(p.id), {
      p: 'sensor',
      name: `${name} inference latency`,
      dev_cla: 'duration',
      unit_of_meas: 'ms',
      stat_t: t.latency(p.id),
      stat_cla: 'measurement',
      sug_dsp_prc: 1,
      ent_cat: 'diagnostic',
    });
    if (p.snapshots) {
      add(
        componentIds.snapshot(p.id),
        options.snapshotMode === 'url'
          ? { p: 'image', name: `${name} snapshot`, url_t: t.snapshotUrl(p.id) }
          : { p: 'image', name: `${name} snapshot`, img_t: t.snapshot(p.id), cont_type: 'image/jpeg' },
      );
    }
  }
  add(componentIds.cpuTemperature(), {
    p: 'sensor',
    name: 'CPU temperature',
    dev_cla: 'temperature',
    unit_of_meas: '°C',
    stat_t: t.cpuTemperature(),
    stat_cla: 'measurement',
    sug_dsp_prc: 1,
    ent_cat: 'diagnostic',
  });
  add(componentIds.lastEvent(), {
    p: 'sensor',
    name: 'Last event',
    ic: 'mdi:cctv',
    stat_t: t.lastEvent(),
    val_tpl: '{{ value_json.label }}',
    json_attr_t: t.lastEvent(),
  });
  return out;
}

/**
 * The device-based discovery message: one retained payload with `dev`, `o`, `avty` and `cmps`.
 * Availability follows the agent's own status topic, whose payload is JSON
 * (`{"v":1,"state":"online"|"offline","ts":...}`), hence the value template.
 * `removed` lists component ids to send as removal stubs (`{"p": platform}`), which is how
 * Home Assistant removes single components of a device.
 */
export function buildDiscovery(
  device: HaDevice,
  pipelines: readonly HaPipeline[],
  options: DiscoveryOptions = {},
  removed: ReadonlyMap<string, string> = new Map(),
): { topic: string; payload: Record<string, unknown>; components: Record<string, Component> } {
  const id = assertId(device.deviceId, 'device id');
  const components = buildComponents(device, pipelines, options);
  const cmps: Record<string, Component> = {};
  for (const [cid, platform] of removed) if (!(cid in components)) cmps[cid] = { p: platform };
  Object.assign(cmps, components);
  const dev: Record<string, unknown> = {
    ids: [`perch_${id}`],
    name: device.name ?? `Perch ${id}`,
    mf: 'Perch',
    mdl: device.model ?? 'Perch agent',
    sw: device.swVersion,
  };
  if (device.hwVersion) dev.hw = device.hwVersion;
  if (device.configurationUrl) dev.cu = device.configurationUrl;
  const payload = {
    dev,
    o: { name: ORIGIN_NAME, sw: device.swVersion },
    avty: [
      {
        topic: topics.status(id, options.topicPrefix ?? DEFAULT_PREFIX),
        value_template: '{{ value_json.state }}',
        payload_available: 'online',
        payload_not_available: 'offline',
      },
    ],
    qos: 1,
    cmps,
  };
  return { topic: discoveryTopic(id, options), payload, components };
}
