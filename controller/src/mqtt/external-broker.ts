import mqtt, { type MqttClient } from 'mqtt';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { PerchError, topics, type Logger } from '@perch/shared';
import type { DeviceBus, InboundMessage } from './bus';

export interface ExternalBrokerOptions {
  url: string;
  username: string;
  password: string;
  clientId?: string;
  topicPrefix: string;
  logger: Logger;
  onMessage: (message: InboundMessage) => void;
  /** Called after every reconnect (not the first connect): the controller republishes retained state. */
  onReconnect?: () => void;
  /** Shared subscription group for several replicas (MQTT 5); empty for a plain subscription. */
  shareGroup?: string;
  /** Bound on the first connect (default 10 s). */
  connectTimeoutMs?: number;
}

/**
 * Connects an MQTT 5 client and resolves on the first CONNACK; a refusal, or no answer within the
 * bound, rejects with E_BROKER_UNAVAILABLE (mqtt.js keeps retrying a refused connection without an
 * 'error' event, so the first connect is bounded here). Later drops reconnect on their own.
 */
export async function connectMqtt5(
  url: string,
  options: {
    username: string;
    password: string;
    clientId: string;
    timeoutMs?: number;
    /** Keep the session (and the broker's queue for it) this many seconds after a drop; 0: clean. */
    sessionExpiryS?: number;
  },
  /**
   * Runs before the first packet: attach message handlers here. A resumed session's queued messages
   * arrive right after the CONNACK, and mqtt.js acknowledges a message nobody listened to.
   */
  setup?: (client: MqttClient) => void,
): Promise<MqttClient> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const client = mqtt.connect(url, {
    username: options.username,
    password: options.password,
    clientId: options.clientId,
    protocolVersion: 5,
    clean: !options.sessionExpiryS,
    ...(options.sessionExpiryS ? { properties: { sessionExpiryInterval: options.sessionExpiryS } } : {}),
    reconnectPeriod: 1000,
    connectTimeout: timeoutMs,
  });
  setup?.(client);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.end(true);
      reject(
        new PerchError(
          'E_BROKER_UNAVAILABLE',
          `cannot connect to ${url} as ${options.username}: ${err.message}`,
          undefined,
          { cause: err },
        ),
      );
    };
    const onConnect = () => {
      clearTimeout(timer);
      client.off('error', fail);
      resolve();
    };
    client.once('connect', onConnect);
    client.once('error', fail);
  });
  return client;
}

/** How long the broker keeps queueing for a controller that went away without a clean stop. */
const SESSION_EXPIRY_S = 3600;

/**
 * mqtt.js acknowledges each QoS 1 message with its own socket write: one writev syscall per message,
 * the largest self-time entry in a CPU profile of the ingest bench. mqtt.js handles the packets of
 * one socket read on consecutive ticks; corking the socket at the first of them and uncorking on
 * setImmediate sends all their PUBACKs (and anything else written meanwhile) in one write. A PUBACK
 * leaves at most one event-loop turn later. mqtt.js's own per-packet cork nests inside this one, and
 * a write that meets back-pressure still waits for 'drain', which the uncork brings.
 */
export function coalesceAcks(client: MqttClient): void {
  let corked: Duplex | undefined;
  client.on('packetreceive', () => {
    const stream = client.stream as Duplex;
    if (corked || typeof stream.cork !== 'function') return;
    stream.cork();
    corked = stream;
    setImmediate(() => {
      const s = corked;
      corked = undefined;
      s?.uncork();
    });
  });
}

/**
 * External broker mode: any MQTT 5 broker. The controller subscribes to every device's reported,
 * status, telemetry, events and cmd-result topics and publishes desired state, commands and the fleet
 * topic. It does not manage the broker's users: device credentials and ACLs are the operator's job,
 * and revocation cannot cut a live session (use mode `mosquitto` for that; see mosquitto-broker.ts).
 * The broker enforces the ACL, so the sender id is not known here: the ingest trusts the topic.
 */
export class ExternalBroker implements DeviceBus {
  private client?: MqttClient;

  constructor(private readonly o: ExternalBrokerOptions) {}

  /**
   * Without a share group the controller is the only subscriber, and a persistent session makes the
   * broker queue device messages while it is away. After a broker restart the devices may reconnect and
   * flush their outboxes before the controller has subscribed again; with a clean session whatever they
   * publish in between has no subscriber and is lost although they got their PUBACK. Shared
   * subscriptions stay clean: Mosquitto would go on handing messages to a dead replica's session.
   */
  private get persistent(): boolean {
    return !this.o.shareGroup;
  }

  async start(): Promise<void> {
    const client = await connectMqtt5(
      this.o.url,
      {
        username: this.o.username,
        password: this.o.password,
        clientId: this.o.clientId ?? `perch-controller-${randomUUID().slice(0, 8)}`,
        ...(this.o.connectTimeoutMs === undefined ? {} : { timeoutMs: this.o.connectTimeoutMs }),
        ...(this.persistent ? { sessionExpiryS: SESSION_EXPIRY_S } : {}),
      },
      (c) => {
        let connects = 0;
        // The first connect is the start itself; the controller republishes retained state after it.
        c.on('connect', () => {
          if (++connects > 1) this.o.onReconnect?.();
        });
        coalesceAcks(c);
        c.on('message', (topic, payload) => this.o.onMessage({ topic, payload }));
        c.on('error', (err) => this.o.logger.warn('external broker error', { err: err.message }));
      },
    );
    this.client = client;
    const share = this.o.shareGroup ? `$share/${this.o.shareGroup}/` : '';
    const filters = (['reported', 'status', 'telemetry', 'events', 'cmd-result'] as const).map(
      (k) => `${share}${topics.all(k, this.o.topicPrefix)}`,
    );
    let refused: string[];
    try {
      const granted = await client.subscribeAsync(filters, { qos: 1 });
      refused = granted.filter((g) => g.qos >= 0x80).map((g) => g.topic);
    } catch (err) {
      // mqtt.js rejects a SUBACK carrying a refusal (MQTT 5 reason code >= 0x80).
      refused = [`${filters.join(', ')} (${(err as Error).message})`];
    }
    if (refused.length > 0) {
      await client.endAsync(true);
      this.client = undefined;
      throw new PerchError(
        'E_BROKER_UNAVAILABLE',
        `the broker refused the controller's subscriptions to ${refused.join(', ')}: check its ACL for ${this.o.username}`,
      );
    }
  }

  async addDevice(deviceId: string): Promise<void> {
    this.o.logger.info('external broker: device credentials are managed outside Perch', { deviceId });
  }

  async removeDevice(deviceId: string): Promise<void> {
    this.o.logger.warn('external broker: revoke the device in the broker too, Perch cannot cut its session', {
      deviceId,
    });
  }

  async publishRetained(topic: string, payload: string): Promise<void> {
    await this.publishWith(topic, payload, true);
  }

  async publish(topic: string, payload: string): Promise<void> {
    await this.publishWith(topic, payload, false);
  }

  private async publishWith(topic: string, payload: string, retain: boolean): Promise<void> {
    const client = this.client;
    if (!client?.connected) throw new PerchError('E_BROKER_UNAVAILABLE', 'external broker is not connected');
    const packet = await client.publishAsync(topic, payload, { qos: 1, retain });
    const code = (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
    if (code >= 0x80) {
      throw new PerchError(
        'E_BROKER_UNAVAILABLE',
        `the broker refused a publish to ${topic} (reason 0x${code.toString(16)})`,
      );
    }
  }

  async stop(): Promise<void> {
    // With a stable client id (the controller's, kept in its data folder) the session outlives a stop:
    // the broker queues device messages until the controller is back, for SESSION_EXPIRY_S. A random
    // id can never be resumed, so its session is ended.
    const endSession = this.persistent && this.o.clientId === undefined;
    await this.client?.endAsync(false, endSession ? { properties: { sessionExpiryInterval: 0 } } : {});
  }
}
