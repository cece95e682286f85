import mqtt, { type MqttClient } from 'mqtt';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { PerchError, topics, type Logger } from '@perch/shared';
import type { DeviceBus, InboundMessage } from './bus';
import { controllerRoleAcls, deviceRoleAcls, deviceRoleName } from '../broker/dynsec-acl';

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
  /** Mosquitto dynamic-security plugin: provisions device clients and roles, kicks revoked ones. */
  dynamicSecurity: boolean;
  /** Shared subscription group for several replicas (MQTT 5); empty for a plain subscription. */
  shareGroup?: string;
  requestTimeoutMs?: number;
}

const CONTROL = '$CONTROL/dynamic-security/v1';
const CONTROL_RESPONSE = `${CONTROL}/response`;

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
 * External broker mode (Mosquitto, MQTT 5). The controller subscribes to every device's reported,
 * status, telemetry, events and cmd-result topics; device credentials and ACLs live in the broker's
 * dynamic-security plugin, which also disconnects a client when it is deleted (revocation).
 * The broker enforces the ACL, so the sender id is not known here: the ingest trusts the topic.
 */
export class ExternalBroker implements DeviceBus {
  private client?: MqttClient;
  private readonly pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private pendingCounter = 0;

  constructor(private readonly o: ExternalBrokerOptions) {}

  async start(): Promise<void> {
    const client = mqtt.connect(this.o.url, {
      username: this.o.username,
      password: this.o.password,
      clientId: this.o.clientId ?? `perch-controller-${randomUUID().slice(0, 8)}`,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    this.client = client;
    let connects = 0;
    client.on('connect', () => {
      if (++connects > 1) this.o.onReconnect?.();
    });
    coalesceAcks(client);
    client.on('message', (topic, payload) => {
      if (topic === CONTROL_RESPONSE) return this.onControlResponse(payload);
      this.o.onMessage({ topic, payload });
    });
    client.on('error', (err) => this.o.logger.warn('external broker error', { err: err.message }));
    await new Promise<void>((resolve, reject) => {
      // mqtt.js keeps retrying a refused connection without an 'error' event: bound the first connect.
      const timer = setTimeout(() => fail(new Error('no connection within 10 s')), 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.end(true);
        reject(
          new PerchError(
            'E_BROKER_UNAVAILABLE',
            `cannot connect to ${this.o.url}: ${err.message}`,
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
    const share = this.o.shareGroup ? `$share/${this.o.shareGroup}/` : '';
    const filters = (['reported', 'status', 'telemetry', 'events', 'cmd-result'] as const).map(
      (k) => `${share}${topics.all(k, this.o.topicPrefix)}`,
    );
    if (this.o.dynamicSecurity) filters.push(CONTROL_RESPONSE);
    await client.subscribeAsync(filters, { qos: 1 });
    if (this.o.dynamicSecurity) await this.ensureControllerRole();
  }

  private onControlResponse(payload: Buffer): void {
    let parsed: { responses?: Array<{ command: string; error?: string; correlationData?: string }> };
    try {
      parsed = JSON.parse(payload.toString('utf8')) as typeof parsed;
    } catch {
      return;
    }
    for (const r of parsed.responses ?? []) {
      const p = r.correlationData ? this.pending.get(r.correlationData) : undefined;
      if (!p || !r.correlationData) continue;
      this.pending.delete(r.correlationData);
      if (r.error) p.reject(new Error(`${r.command}: ${r.error}`));
      else p.resolve(r);
    }
  }

  /** Sends one dynamic-security command and waits for its answer. */
  private control(command: Record<string, unknown>, tolerate: string[] = []): Promise<unknown> {
    const client = this.client;
    if (!client) return Promise.reject(new PerchError('E_BROKER_UNAVAILABLE', 'not connected'));
    const correlationData = `c${++this.pendingCounter}`;
    const timeoutMs = this.o.requestTimeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationData);
        reject(
          new PerchError('E_BROKER_UNAVAILABLE', `dynamic-security ${String(command.command)} timed out`),
        );
      }, timeoutMs);
      this.pending.set(correlationData, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          if (tolerate.some((t) => e.message.includes(t))) resolve(undefined);
          else reject(new PerchError('E_BROKER_UNAVAILABLE', `dynamic-security refused: ${e.message}`));
        },
      });
      client.publish(
        `${CONTROL}`,
        JSON.stringify({ commands: [{ ...command, correlationData }] }),
        { qos: 1 },
        (err) => {
          if (err) {
            this.pending.delete(correlationData);
            clearTimeout(timer);
            reject(new PerchError('E_BROKER_UNAVAILABLE', err.message));
          }
        },
      );
    });
  }

  /** Gives the controller's own broker user the right to publish desired state and commands. */
  private async ensureControllerRole(): Promise<void> {
    const acls = controllerRoleAcls({ prefix: this.o.topicPrefix });
    await this.control({ command: 'createRole', rolename: 'perch-controller', acls }, ['already exists']);
    const info = (await this.control({ command: 'getClient', username: this.o.username })) as {
      data?: { client?: { roles?: Array<{ rolename?: string }> } };
    };
    if ((info.data?.client?.roles ?? []).some((r) => r.rolename === 'perch-controller')) return;
    // Mosquitto disconnects a client whose roles change, so the answer to this command is never seen:
    // send it without waiting, and wait for the reconnect instead (mqtt.js resubscribes on its own).
    const client = this.client;
    if (!client) return;
    const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
    client.publish(
      CONTROL,
      JSON.stringify({
        commands: [{ command: 'addClientRole', username: this.o.username, rolename: 'perch-controller' }],
      }),
      { qos: 1 },
    );
    await reconnected;
  }

  async addDevice(deviceId: string, password: string): Promise<void> {
    if (!this.o.dynamicSecurity) return;
    const role = deviceRoleName(deviceId);
    await this.control(
      {
        command: 'createRole',
        rolename: role,
        acls: deviceRoleAcls(deviceId, { prefix: this.o.topicPrefix }),
      },
      ['already exists'],
    );
    await this.control({ command: 'deleteClient', username: deviceId }, ['not found']);
    await this.control({
      command: 'createClient',
      username: deviceId,
      password,
      clientid: deviceId,
      roles: [{ rolename: role }],
    });
  }

  async removeDevice(deviceId: string): Promise<void> {
    if (!this.o.dynamicSecurity) return;
    // Deleting the client disconnects its live session in Mosquitto's dynamic-security plugin.
    await this.control({ command: 'deleteClient', username: deviceId }, ['not found']);
    await this.control({ command: 'deleteRole', rolename: deviceRoleName(deviceId) }, ['not found']);
  }

  async publishRetained(topic: string, payload: string): Promise<void> {
    const client = this.client;
    if (!client?.connected) throw new PerchError('E_BROKER_UNAVAILABLE', 'external broker is not connected');
    await client.publishAsync(topic, payload, { qos: 1, retain: true });
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) p.reject(new Error('stopping'));
    this.pending.clear();
    await this.client?.endAsync();
  }
}
