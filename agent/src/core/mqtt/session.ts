import mqtt, { type IClientOptions, type MqttClient } from './mqtt-lib';
import {
  assertPublishable,
  decodeMessage,
  encodeMessage,
  parseTopic,
  topics,
  type Clock,
  type CommandMessage,
  type DesiredState,
  type Logger,
} from '@perch/shared';
import { Backoff } from '../backoff';
import type { Counters } from '../counters';
import type { AckPublisher } from '../outbox-sender';

export interface MqttCredentials {
  url: string;
  username: string;
  password: string;
  clientId: string;
  topicPrefix: string;
}

export interface SessionHandlers {
  onDesired(desired: DesiredState): void;
  onCommand(name: string, command: CommandMessage): void;
  onConnect(): void;
  onDisconnect(): void;
}

export interface SessionOptions {
  reconnectBaseMs: number;
  reconnectCapMs: number;
  /** A connection must last this long before the backoff starts over (no tight flapping loop). */
  stableAfterMs: number;
  connectTimeoutMs: number;
  keepaliveS: number;
  /** MQTT 5: the broker keeps the session this long while we are away. */
  sessionExpiryS: number;
  /** MQTT 5: the will waits this long, so a quick reconnect does not flap the status. */
  willDelayS: number;
  maxInboundBytes: number;
}

export const DEFAULT_SESSION_OPTIONS: SessionOptions = {
  reconnectBaseMs: 1000,
  reconnectCapMs: 5 * 60_000,
  stableAfterMs: 30_000,
  connectTimeoutMs: 15_000,
  keepaliveS: 30,
  sessionExpiryS: 7 * 24 * 3600,
  willDelayS: 10,
  maxInboundBytes: 256 * 1024,
};

export type MqttConnect = (url: string, options: IClientOptions) => MqttClient;

/**
 * The agent's MQTT session: MQTT 5 with a fallback to 3.1.1, a persistent session, a retained
 * `offline` will, a retained `online` after every connect and `offline` on a clean stop. mqtt.js's own
 * fixed-period reconnect is off; reconnects follow jittered exponential backoff with a cap.
 */
export class MqttSession implements AckPublisher {
  private client: MqttClient | undefined;
  private protocolVersion: 4 | 5 = 5;
  private readonly backoff: Backoff;
  private reconnectTimer: unknown;
  private connectedAt = 0;
  private stopping = false;
  private isConnected = false;
  private connects = 0;
  /** Topics other parts of the agent follow (Home Assistant's birth topic): exact names, no wildcards. */
  private readonly extraTopics = new Set<string>();
  private readonly connectListeners = new Set<() => void>();
  private readonly messageListeners = new Set<(topic: string, payload: Buffer) => void>();

  constructor(
    private readonly creds: MqttCredentials,
    private readonly deviceId: string,
    private readonly handlers: SessionHandlers,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly options: SessionOptions = DEFAULT_SESSION_OPTIONS,
    private readonly connectFn: MqttConnect = (url, opts) => mqtt.connect(url, opts),
    random?: () => number,
  ) {
    this.backoff = new Backoff({
      baseMs: options.reconnectBaseMs,
      capMs: options.reconnectCapMs,
      minMs: Math.min(100, options.reconnectBaseMs),
      ...(random ? { random } : {}),
    });
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get protocol(): 4 | 5 {
    return this.protocolVersion;
  }

  connectCount(): number {
    return this.connects;
  }

  /**
   * Follows one more topic outside the device subtree (e.g. `homeassistant/status`), subscribed on
   * every connect like the device's own topics; its messages go to `onMessage` listeners, not the
   * decoder. The broker ACL must allow the subscription.
   */
  subscribeExtra(topic: string): void {
    if (/[+#]/.test(topic)) throw new Error(`extra subscription ${topic} must be an exact topic`);
    if (this.extraTopics.has(topic)) return;
    this.extraTopics.add(topic);
    if (this.isConnected)
      this.client?.subscribe(topic, { qos: 1 }, (err) => {
        if (err) this.logger.warn('extra subscription failed', { topic, err: err.message });
      });
  }

  /** Called after every connect, once the subscriptions are in place. Returns the unsubscribe. */
  onConnected(fn: () => void): () => void {
    this.connectListeners.add(fn);
    return () => this.connectListeners.delete(fn);
  }

  /** Messages on topics added with `subscribeExtra`. Returns the unsubscribe. */
  onExtraMessage(fn: (topic: string, payload: Buffer) => void): () => void {
    this.messageListeners.add(fn);
    return () => this.messageListeners.delete(fn);
  }

  private statusPayload(state: 'online' | 'offline', reason?: string): string {
    return encodeMessage('status', {
      v: 1,
      state,
      ts: this.clock.now(),
      ...(reason ? { reason } : {}),
    });
  }

  private clientOptions(): IClientOptions {
    const statusTopic = topics.status(this.deviceId, this.creds.topicPrefix);
    const options: IClientOptions = {
      clientId: this.creds.clientId,
      username: this.creds.username,
      password: this.creds.password,
      protocolVersion: this.protocolVersion,
      clean: false,
      reconnectPeriod: 0,
      resubscribe: false,
      connectTimeout: this.options.connectTimeoutMs,
      keepalive: this.options.keepaliveS,
      queueQoSZero: false,
      will: {
        topic: statusTopic,
        payload: Buffer.from(this.statusPayload('offline', 'connection lost')),
        qos: 1,
        retain: true,
        ...(this.protocolVersion === 5 ? { properties: { willDelayInterval: this.options.willDelayS } } : {}),
      },
    };
    if (this.protocolVersion === 5) {
      options.properties = {
        sessionExpiryInterval: this.options.sessionExpiryS,
        maximumPacketSize: this.options.maxInboundBytes + 1024,
      };
    }
    return options;
  }

  start(): void {
    this.stopping = false;
    this.open();
  }

  private open(): void {
    const client = this.connectFn(this.creds.url, this.clientOptions());
    this.client = client;
    client.on('connect', (connack) => {
      this.isConnected = true;
      this.connects++;
      this.connectedAt = this.clock.now();
      this.logger.info('mqtt connected', {
        protocol: this.protocolVersion,
        sessionPresent: connack.sessionPresent,
      });
      this.afterConnect(client);
    });
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err: Error & { code?: number }) => {
      this.counters.error('E_MQTT_CONNECT');
      // 0x84 (MQTT 5) / 1 (3.1.1): unsupported protocol version; speak 3.1.1 from now on.
      if (
        this.protocolVersion === 5 &&
        (err.code === 132 || err.code === 1 || /protocol/i.test(err.message))
      ) {
        this.logger.warn('broker refused MQTT 5; falling back to 3.1.1', { code: 'E_MQTT_CONNECT' });
        this.protocolVersion = 4;
        this.backoff.reset();
      } else {
        this.logger.warn('mqtt error', { code: 'E_MQTT_CONNECT', err: err.message, reason: err.code });
      }
    });
    client.on('close', () => {
      const was = this.isConnected;
      this.isConnected = false;
      if (was) this.handlers.onDisconnect();
      if (this.stopping) return;
      if (this.connectedAt && this.clock.now() - this.connectedAt >= this.options.stableAfterMs)
        this.backoff.reset();
      this.connectedAt = 0;
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined) return;
    const delay = this.backoff.next();
    this.logger.info('mqtt reconnect scheduled', { delayMs: delay, attempt: this.backoff.attempts });
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopping) return;
      const old = this.client;
      // A protocol change needs new connect options, i.e. a new client; otherwise reuse it so that
      // mqtt.js keeps its outgoing store (unacknowledged QoS 1 messages) across the reconnect.
      if (old && (old.options.protocolVersion ?? 4) === this.protocolVersion) old.reconnect();
      else {
        old?.removeAllListeners();
        old?.end(true);
        this.open();
      }
    }, delay);
  }

  private afterConnect(client: MqttClient): void {
    const prefix = this.creds.topicPrefix;
    // Separate SUBSCRIBE: a broker ACL that refuses an extra topic must not fail the device's own.
    if (this.extraTopics.size > 0)
      client.subscribe([...this.extraTopics], { qos: 1 }, (err) => {
        if (err)
          this.logger.warn('extra subscription refused', { topics: [...this.extraTopics], err: err.message });
      });
    client.publish(
      topics.status(this.deviceId, prefix),
      this.statusPayload('online'),
      { qos: 1, retain: true },
      (err) => {
        if (err) this.logger.warn('publishing online failed', { err: err.message });
      },
    );
    client.subscribe(
      [topics.desired(this.deviceId, prefix), topics.cmdAll(this.deviceId, prefix)],
      { qos: 1 },
      (err, granted) => {
        if (err) {
          this.counters.error('E_MQTT_CONNECT');
          this.logger.error('subscribe failed', { code: 'E_MQTT_CONNECT', err: err.message });
          return;
        }
        const refused = (granted ?? []).filter((g) => g.qos > 2);
        if (refused.length)
          this.logger.error('subscription refused by the broker', { refused: refused.map((g) => g.topic) });
        this.handlers.onConnect();
        for (const fn of this.connectListeners) {
          try {
            fn();
          } catch (e) {
            this.logger.warn('connect listener failed', { err: String(e) });
          }
        }
      },
    );
  }

  private reject(reason: string, topic: string, code?: string): void {
    this.counters.error('E_MQTT_INBOUND_REJECTED');
    if (code) this.counters.error(code);
    this.logger.warn('inbound message rejected', {
      code: 'E_MQTT_INBOUND_REJECTED',
      cause: code,
      reason,
      topic: topic.slice(0, 200),
    });
  }

  /** Every inbound message goes through the shared decoder; a bad one is counted and dropped. */
  onMessage(topic: string, payload: Buffer): void {
    try {
      if (this.extraTopics.has(topic)) {
        if (payload.length > this.options.maxInboundBytes) return this.reject('message too large', topic);
        for (const fn of this.messageListeners) fn(topic, payload);
        return;
      }
      const parsed = parseTopic(topic, this.creds.topicPrefix);
      if (!parsed.ok) return this.reject(parsed.error.message, topic, parsed.error.code);
      if (parsed.value.deviceId !== this.deviceId) return this.reject('message for another device', topic);
      const max = { maxBytes: this.options.maxInboundBytes };
      if (parsed.value.kind === 'desired') {
        // An empty retained message clears the desired state on the broker; nothing to do.
        if (payload.length === 0) return;
        const decoded = decodeMessage('desired', payload, max);
        if (!decoded.ok) return this.reject(decoded.error.message, topic, decoded.error.code);
        this.handlers.onDesired(decoded.value);
      } else if (parsed.value.kind === 'cmd' && parsed.value.name) {
        if (payload.length === 0) return;
        const decoded = decodeMessage('cmd', payload, max);
        if (!decoded.ok) return this.reject(decoded.error.message, topic, decoded.error.code);
        this.handlers.onCommand(parsed.value.name, decoded.value);
      } else {
        this.reject(`unexpected ${parsed.value.kind} message`, topic);
      }
    } catch (err) {
      this.reject(`handler failed: ${String(err)}`, topic, 'E_INTERNAL');
    }
  }

  /** QoS 1 publish that resolves on PUBACK; rejects at once while offline (the outbox keeps the row). */
  publishAcked(topic: string, payload: Buffer | string, retain = false): Promise<void> {
    const client = this.client;
    if (!client || !this.isConnected) return Promise.reject(new Error('not connected'));
    try {
      assertPublishable(topic);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: 1, retain }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Clean stop: retained `offline`, then a normal DISCONNECT (which also discards the will).
   * Bounded by `timeoutMs`.
   */
  async stop(timeoutMs = 3000, reason = 'stopped'): Promise<void> {
    this.stopping = true;
    this.clock.clearTimeout(this.reconnectTimer as never);
    this.reconnectTimer = undefined;
    const client = this.client;
    if (!client) return;
    if (this.isConnected) {
      await Promise.race([
        this.publishAcked(
          topics.status(this.deviceId, this.creds.topicPrefix),
          this.statusPayload('offline', reason),
          true,
        ).catch(() => undefined),
        this.clock.sleep(timeoutMs).catch(() => undefined),
      ]);
    }
    await new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        client.end(true);
        resolve();
      }, timeoutMs);
      client.end(false, () => {
        this.clock.clearTimeout(timer);
        resolve();
      });
    });
    this.isConnected = false;
  }
}
