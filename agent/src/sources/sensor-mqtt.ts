import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { SensorSourceConfig } from './config';
import type { ResolvedDeps } from './deps';
import { redact } from './redact';
import { SensorSource } from './sensor-source';

type Config = Extract<SensorSourceConfig, { kind: 'sensor-mqtt' }>;

/** The part of an mqtt.js MqttClient this source uses (the agent passes its connected client). */
export interface SensorMqttClient {
  subscribe(
    topic: string,
    opts: { qos: 0 | 1 | 2 },
    callback?: (err: Error | null | undefined, granted?: { qos: number }[]) => void,
  ): unknown;
  unsubscribe(topic: string, callback?: (err?: Error) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
  on(event: 'connect', listener: () => void): unknown;
  removeListener(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
  removeListener(event: 'connect', listener: () => void): unknown;
}

/** Opens the own connection of a sensor-mqtt source that names a broker `url`. */
export type SensorMqttConnect = (url: string, options: IClientOptions) => MqttClient;

export const defaultSensorMqttConnect: SensorMqttConnect = (url, options) => mqtt.connect(url, options);

/** mqtt.js reconnects an own connection after this long (the broker or the network went away). */
const OWN_RECONNECT_MS = 5_000;

/** MQTT topic filter matching (+ one level, # the rest), as the broker does it. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const part = f[i];
    if (part === '#') return i > 0 || !topic.startsWith('$');
    if (i >= t.length) return false;
    if (part === '+') {
      if (i === 0 && t[0]!.startsWith('$')) return false;
      continue;
    }
    if (part !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Readings from an MQTT topic: each message is one or more lines. With `url` the source opens its own
 * connection to that broker (clean session, mqtt.js reconnects) and closes it on stop; without, it uses
 * the client passed in deps, which may be shared, so messages for other subscriptions are ignored by
 * topic filter. The subscription is renewed after every (re)connect.
 */
export class SensorMqttSource extends SensorSource {
  private client: SensorMqttClient | undefined;
  private own: MqttClient | undefined;
  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (!topicMatches(this.mqttConfig.topic, topic)) return;
    if (payload.length > this.mqttConfig.maxLineBytes * 64) {
      this.badLines += 1;
      this.tracker.error(
        'E_SOURCE_SENSOR_LINE_TOO_LONG',
        `MQTT payload of ${payload.length} bytes is too large`,
      );
      return;
    }
    this.feedBytes(payload);
    this.flushBytes();
  };
  private readonly onConnect = (): void => this.subscribe();

  constructor(
    private readonly mqttConfig: Config,
    shared: SensorMqttClient | undefined,
    private readonly deps: ResolvedDeps,
  ) {
    super(mqttConfig, deps);
    this.client = shared;
  }

  protected begin(): Promise<void> {
    const { url, username, password } = this.mqttConfig;
    if (url !== undefined) {
      const own = this.deps.mqttConnect(url, {
        ...(username !== undefined ? { username } : {}),
        ...(password !== undefined ? { password } : {}),
        clean: true,
        resubscribe: false,
        reconnectPeriod: OWN_RECONNECT_MS,
        connectTimeout: 15_000,
      });
      own.on('error', (err: Error) => {
        const message = redact(err.message);
        this.tracker.error('E_SOURCE_MQTT', `broker ${redact(url)}: ${message}`);
        this.tracker.state = 'backoff';
        this.logger.warn('sensor MQTT connection failed', { url: redact(url), message });
      });
      own.on('offline', () => {
        if (!this.stopped) this.tracker.state = 'backoff';
      });
      this.own = own;
      this.client = own;
    }
    const client = this.client!;
    client.on('message', this.onMessage);
    client.on('connect', this.onConnect);
    // An own connection subscribes on its 'connect'; a shared one may be connected already.
    if (!this.own) this.subscribe();
    return Promise.resolve();
  }

  protected end(): Promise<void> {
    const client = this.client!;
    client.removeListener('message', this.onMessage);
    client.removeListener('connect', this.onConnect);
    const own = this.own;
    if (own) {
      this.own = undefined;
      // A clean session: closing the connection drops the subscription too.
      return new Promise((resolve) => {
        own.end(true, {}, () => resolve());
      });
    }
    return new Promise((resolve) => {
      // An offline client queues the unsubscribe; stop() must not wait for the broker to come back.
      const timer = setTimeout(resolve, 2_000);
      client.unsubscribe(this.mqttConfig.topic, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private subscribe(): void {
    if (this.stopped) return;
    this.client?.subscribe(this.mqttConfig.topic, { qos: this.mqttConfig.qos }, (err, granted) => {
      const refused = granted?.some((g) => g.qos >= 0x80);
      if (err || refused) {
        const message = err ? err.message : 'the broker refused the subscription (ACL?)';
        this.tracker.error('E_SOURCE_MQTT', `cannot subscribe to ${this.mqttConfig.topic}: ${message}`);
        this.tracker.state = 'backoff';
        this.logger.warn('sensor MQTT subscribe failed', { topic: this.mqttConfig.topic, message });
        return;
      }
      if (this.tracker.state === 'starting' || this.tracker.state === 'backoff')
        this.tracker.state = 'running';
    });
  }
}
