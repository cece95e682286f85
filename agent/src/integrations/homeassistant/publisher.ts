import type { MqttClient } from 'mqtt';
import {
  PerchError,
  systemClock,
  type Clock,
  type EventMessage,
  type Logger,
  type TimerHandle,
} from '@perch/shared';
import { buildDiscovery, type DiscoveryOptions, type HaDevice, type HaPipeline } from './discovery';
import { birthTopic, haStateTopics, labelSlug, type HaStateTopics } from './ha-topics';
import { validateDiscoveryMessage } from './validate';

/** What was announced to Home Assistant, kept across restarts so vanished components get removed. */
export interface HaPublishedState {
  /** component id -> platform, as last announced. */
  components: Record<string, string>;
  /** Removal stubs still carried in the payload (component id -> platform). */
  removed: Record<string, string>;
}

export interface HaStateStore {
  load(): Promise<HaPublishedState | undefined>;
  save(state: HaPublishedState): Promise<void>;
}

/** Keeps the state in memory only: components removed while the agent was down stay in Home Assistant. */
export class MemoryHaStateStore implements HaStateStore {
  private state: HaPublishedState | undefined;
  async load(): Promise<HaPublishedState | undefined> {
    return this.state && structuredClone(this.state);
  }
  async save(state: HaPublishedState): Promise<void> {
    this.state = structuredClone(state);
  }
}

/**
 * What the publisher needs of an MQTT connection. The agent passes its session (which keeps the
 * birth-topic subscription across reconnects and new clients); `mqttClientLink` adapts a bare client.
 */
export interface HaLink {
  readonly connected: boolean;
  /** QoS 1 publish; resolves when acknowledged. */
  publish(topic: string, payload: string | Buffer, retain: boolean): Promise<void>;
  /** Subscribes (QoS 1), and again after every reconnect where the link can. */
  subscribe(topic: string): void;
  /** Called after every connect, once the link's subscriptions are in place. Returns an unsubscribe. */
  onConnect(fn: () => void): () => void;
  onMessage(fn: (topic: string, payload: Buffer) => void): () => void;
}

/** A bare mqtt.js client as a link (tests, tools): subscriptions are sent once, on the current connection. */
export function mqttClientLink(client: MqttClient): HaLink {
  return {
    get connected() {
      return client.connected;
    },
    publish: async (topic, payload, retain) => {
      await client.publishAsync(topic, payload, { qos: 1, retain });
    },
    subscribe: (topic) => {
      client.subscribe(topic, { qos: 1 }, () => undefined);
    },
    onConnect: (fn) => {
      const listener = () => fn();
      client.on('connect', listener);
      return () => client.off('connect', listener);
    },
    onMessage: (fn) => {
      const listener = (topic: string, payload: Buffer) => fn(topic, payload);
      client.on('message', listener);
      return () => client.off('message', listener);
    },
  };
}

export interface HomeAssistantPublisherOptions extends DiscoveryOptions {
  /** The agent's MQTT connection (MQTT 5 with Mosquitto, 3.1.1 with the embedded broker). */
  link: HaLink;
  device: HaDevice;
  logger: Logger;
  /** false: publish nothing, and remove a discovery left from an earlier run (default true). */
  enabled?: boolean;
  clock?: Clock;
  /** Upper bound of the random delay before answering Home Assistant's birth message (default 2000 ms). */
  birthJitterMs?: number;
  random?: () => number;
  store?: HaStateStore;
  /** At most this many removal stubs are carried (oldest dropped first). */
  maxRemovedStubs?: number;
}

export interface HaPublisherStats {
  discoveryPublished: number;
  statesPublished: number;
  publishErrors: number;
  invalidPayloads: number;
}

/**
 * Publishes device-based Home Assistant discovery for one agent and the entity states it points at.
 * Discovery is retained and re-published when Home Assistant announces itself (`<prefix>/status` =
 * `online`) and after every connect, with the last states.
 *
 * Why every connect and not only those without a session: the device cannot read its own discovery
 * topic back (its ACL allows publishing it, not subscribing), so a lost retained message cannot be
 * detected, and `sessionPresent` is no proof that retained messages survived: Mosquitto restores
 * sessions and retained messages from its last autosave, so a retained message published after that
 * save is lost on a crash while the session comes back. Re-publishing costs one retained payload per
 * connection (reconnects are rare and backed off), and Home Assistant ignores an unchanged one.
 * While the link is down nothing is sent: the next connect sends the current discovery and states.
 *
 * Components of pipelines that went away are removed with removal stubs; `remove()` clears the
 * whole device (revocation, disable).
 */
export class HomeAssistantPublisher {
  private readonly clock: Clock;
  private readonly topics: HaStateTopics;
  private pipelines: readonly HaPipeline[] = [];
  private published: HaPublishedState = { components: {}, removed: {} };
  private readonly lastStates = new Map<string, string | Buffer>();
  private readonly active = new Map<string, Set<string>>();
  private birthTimer: TimerHandle | undefined;
  private running = false;
  private readonly counters: HaPublisherStats = {
    discoveryPublished: 0,
    statesPublished: 0,
    publishErrors: 0,
    invalidPayloads: 0,
  };

  private unlink: Array<() => void> = [];

  private readonly onConnect = () => {
    this.options.logger.debug('connected: re-publishing Home Assistant discovery and states');
    void this.republishAll();
  };

  private readonly onMessage = (topic: string, payload: Buffer) => {
    if (topic !== birthTopic(this.options) || payload.toString() !== 'online' || this.birthTimer) return;
    const delay = Math.floor((this.options.random ?? Math.random)() * (this.options.birthJitterMs ?? 2000));
    this.birthTimer = this.clock.setTimeout(() => {
      this.birthTimer = undefined;
      void this.republishAll();
    }, delay);
  };

  constructor(private readonly options: HomeAssistantPublisherOptions) {
    this.clock = options.clock ?? systemClock;
    this.topics = haStateTopics(options.device.deviceId, options);
  }

  get enabled(): boolean {
    return this.options.enabled !== false;
  }

  stats(): HaPublisherStats {
    return { ...this.counters };
  }

  /** Announces the device with these pipelines and follows Home Assistant's birth messages. */
  async start(pipelines: readonly HaPipeline[]): Promise<void> {
    const link = this.options.link;
    if (!this.enabled) {
      // Turned off: make sure nothing from an earlier run stays in Home Assistant, once.
      const earlier = await this.options.store?.load();
      const announced = !this.options.store || Object.keys(earlier?.components ?? {}).length > 0;
      if (!announced) return;
      const clear = async () => {
        if (!(await this.publish(this.discoveryTopic(), '', 'discovery'))) return false;
        await this.options.store?.save({ components: {}, removed: {} });
        return true;
      };
      if (link.connected && (await clear())) return;
      const off = link.onConnect(() => {
        void clear().then((done) => done && off());
      });
      this.unlink.push(off);
      return;
    }
    this.published = (await this.options.store?.load()) ?? this.published;
    this.pipelines = pipelines;
    this.running = true;
    this.unlink.push(link.onConnect(this.onConnect), link.onMessage(this.onMessage));
    link.subscribe(birthTopic(this.options));
    await this.publishDiscovery();
  }

  stop(): void {
    this.running = false;
    for (const off of this.unlink.splice(0)) off();
    this.clock.clearTimeout(this.birthTimer);
    this.birthTimer = undefined;
  }

  /** The pipelines changed (desired state applied): components of removed ones are removed. */
  async setPipelines(pipelines: readonly HaPipeline[]): Promise<void> {
    this.pipelines = pipelines;
    if (this.running) await this.publishDiscovery();
  }

  /** Removes the device and its retained states from Home Assistant (device revoked or integration off). */
  async remove(): Promise<void> {
    this.stop();
    await this.publish(this.discoveryTopic(), '', 'discovery');
    for (const topic of this.lastStates.keys()) await this.publish(topic, '', 'state');
    this.lastStates.clear();
    this.published = { components: {}, removed: {} };
    await this.options.store?.save(this.published);
  }

  /** Builds, validates and publishes the discovery payload (retained). */
  async publishDiscovery(): Promise<void> {
    const removed = new Map(Object.entries(this.published.removed));
    const current = buildDiscovery(this.options.device, this.pipelines, this.options).components;
    for (const [cid, platform] of Object.entries(this.published.components)) {
      if (!(cid in current)) removed.set(cid, platform);
    }
    for (const cid of Object.keys(current)) removed.delete(cid);
    const max = this.options.maxRemovedStubs ?? 500;
    while (removed.size > max) removed.delete(removed.keys().next().value as string);
    const { topic, payload, components } = buildDiscovery(
      this.options.device,
      this.pipelines,
      this.options,
      removed,
    );
    const text = JSON.stringify(payload);
    const check = validateDiscoveryMessage(topic, text, this.options);
    if (!check.ok) {
      this.counters.invalidPayloads++;
      const err = new PerchError(
        'E_HA_DISCOVERY_INVALID',
        'Home Assistant discovery payload breaks the discovery rules',
        {
          issues: check.issues.slice(0, 20),
        },
      );
      this.options.logger.error(err.message, err.toJSON());
      throw err;
    }
    await this.publish(topic, text, 'discovery');
    this.published = {
      components: Object.fromEntries(Object.entries(components).map(([cid, c]) => [cid, c.p])),
      removed: Object.fromEntries(removed),
    };
    await this.options.store?.save(this.published);
  }

  private async republishAll(): Promise<void> {
    if (!this.running) return;
    try {
      await this.publishDiscovery();
    } catch {
      return; // counted and logged
    }
    for (const [topic, payload] of this.lastStates) await this.publish(topic, payload, 'state');
  }

  // ---- entity states ----------------------------------------------------------------------

  setDetected(pipelineId: string, label: string, detected: boolean): Promise<void> {
    return this.setState(this.topics.detected(pipelineId, label), detected ? 'ON' : 'OFF');
  }

  setCount(pipelineId: string, label: string, count: number): Promise<void> {
    return this.setState(this.topics.count(pipelineId, label), String(Math.max(0, Math.round(count))));
  }

  setFps(pipelineId: string, fps: number): Promise<void> {
    return this.setState(this.topics.fps(pipelineId), fps.toFixed(2));
  }

  setLatency(pipelineId: string, ms: number): Promise<void> {
    return this.setState(this.topics.latency(pipelineId), ms.toFixed(2));
  }

  setCpuTemperature(celsius: number): Promise<void> {
    return this.setState(this.topics.cpuTemperature(), celsius.toFixed(1));
  }

  /** JPEG bytes of the latest snapshot (snapshotMode `image`). */
  setSnapshot(pipelineId: string, jpeg: Buffer): Promise<void> {
    return this.setState(this.topics.snapshot(pipelineId), jpeg);
  }

  /** URL of the latest snapshot (snapshotMode `url`). */
  setSnapshotUrl(pipelineId: string, url: string): Promise<void> {
    return this.setState(this.topics.snapshotUrl(pipelineId), url);
  }

  /**
   * Follows the event stream: a label is detected while any of its events is between start and
   * end, and its count is the number of such events. Also updates the last-event sensor.
   */
  async applyEvent(event: EventMessage): Promise<void> {
    const key = `${event.pipeline}\u0000${labelSlug(event.label)}`;
    const open = this.active.get(key) ?? new Set<string>();
    if (event.phase === 'end') open.delete(event.eventId);
    else open.add(event.eventId);
    if (open.size === 0) this.active.delete(key);
    else this.active.set(key, open);
    await this.setDetected(event.pipeline, event.label, open.size > 0);
    await this.setCount(event.pipeline, event.label, open.size);
    if (event.phase === 'start') {
      const attributes: Record<string, unknown> = {
        label: event.label,
        pipeline: event.pipeline,
        score: event.score,
        event_id: event.eventId,
        ts: new Date(event.ts).toISOString(),
      };
      if (event.zone) attributes.zone = event.zone;
      if (event.snapshot) attributes.snapshot = event.snapshot;
      await this.setState(this.topics.lastEvent(), JSON.stringify(attributes), true);
    }
  }

  private async setState(topic: string, payload: string | Buffer, always = false): Promise<void> {
    if (!this.enabled) return;
    const last = this.lastStates.get(topic);
    const same = last !== undefined && (Buffer.isBuffer(payload) ? false : last === payload);
    this.lastStates.set(topic, payload);
    if (same && !always) return;
    await this.publish(topic, payload, 'state');
  }

  private discoveryTopic(): string {
    return buildDiscovery(this.options.device, [], this.options).topic;
  }

  /** Retained QoS 1 publish; false when not sent (offline: the next connect re-sends everything). */
  private async publish(
    topic: string,
    payload: string | Buffer,
    kind: 'discovery' | 'state',
  ): Promise<boolean> {
    if (!this.options.link.connected) return false;
    try {
      await this.options.link.publish(topic, payload, true);
      if (kind === 'discovery') this.counters.discoveryPublished++;
      else this.counters.statesPublished++;
      return true;
    } catch (err) {
      this.counters.publishErrors++;
      this.options.logger.warn('Home Assistant publish failed', { topic, err: (err as Error).message });
      return false;
    }
  }
}
