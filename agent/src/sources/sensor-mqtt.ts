import type { SensorSourceConfig } from './config';
import type { ResolvedDeps } from './deps';
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
 * Readings from an MQTT topic on the agent's own client: each message is one or more lines. The client
 * is shared, so messages for other subscriptions are ignored by topic filter; the subscription is renewed
 * after a reconnect in case the session was not kept.
 */
export class SensorMqttSource extends SensorSource {
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
    private readonly client: SensorMqttClient,
    deps: ResolvedDeps,
  ) {
    super(mqttConfig, deps);
  }

  protected begin(): Promise<void> {
    this.client.on('message', this.onMessage);
    this.client.on('connect', this.onConnect);
    this.subscribe();
    return Promise.resolve();
  }

  protected end(): Promise<void> {
    this.client.removeListener('message', this.onMessage);
    this.client.removeListener('connect', this.onConnect);
    return new Promise((resolve) => {
      // An offline client queues the unsubscribe; stop() must not wait for the broker to come back.
      const timer = setTimeout(resolve, 2_000);
      this.client.unsubscribe(this.mqttConfig.topic, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private subscribe(): void {
    if (this.stopped) return;
    this.client.subscribe(this.mqttConfig.topic, { qos: this.mqttConfig.qos }, (err, granted) => {
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
