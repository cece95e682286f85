import net from 'node:net';
import { createBroker, type AuthenticateError, type Client } from 'aedes';
import type Aedes from 'aedes';
import { parseTopic, PerchError, type Logger } from '@perch/shared';
import type { Store } from '../db/open';
import type { ControllerMetrics } from '../metrics';
import { hashSecret, sameHash } from '../auth/secrets';
import { mayPublish, maySubscribe } from './acl';
import { isRole } from '../auth/roles';
import type { DeviceBus, InboundMessage } from './bus';
import { guardedConnection } from './packet-guard';

export interface EmbeddedBrokerOptions {
  store: Store;
  logger: Logger;
  metrics: ControllerMetrics;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  topicPrefix: string;
  maxPacketBytes: number;
  /** Home Assistant discovery prefix (default `homeassistant`). */
  homeAssistantPrefix?: string;
  /** The fleet topic integrations may read with an API token (dynsec-acl.ts fleetEventsTopic). */
  fleetTopic?: string;
  onMessage: (message: InboundMessage) => void;
}

/** Client ids of read-only integration logins start with this. */
export const INTEGRATION_CLIENT_PREFIX = 'integration:';

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * The in-process broker (aedes, MQTT 3.1.1 only). Devices log in with username = client id = device
 * id and the password from enrollment; every publish and subscribe is checked against the ACL.
 * Messages on device topics are handed to the ingest with the authenticated sender id.
 *
 * Integrations log in with any username, a client id starting with `integration:` and an operator API
 * token (role viewer or stronger) as the password: they may only subscribe to the fleet topic and
 * never publish. The token is checked at
 * connect; revoking it refuses the next connect but does not cut a live session.
 */
export class EmbeddedBroker implements DeviceBus {
  private aedes?: Aedes;
  private server?: net.Server;
  private readonly clients = new Map<string, Client>();
  private readonly sockets = new Set<net.Socket>();
  /** Clients logged in with an API token (read-only integrations), not devices. */
  private readonly integrations = new WeakSet<Client>();

  constructor(private readonly o: EmbeddedBrokerOptions) {}

  private acl() {
    return {
      prefix: this.o.topicPrefix,
      ...(this.o.homeAssistantPrefix ? { homeAssistantPrefix: this.o.homeAssistantPrefix } : {}),
    };
  }

  get port(): number {
    const addr = this.server?.address();
    return addr && typeof addr === 'object' ? addr.port : 0;
  }

  async start(): Promise<void> {
    const { store, metrics, topicPrefix, logger } = this.o;
    const aedes = createBroker({
      maxClientsIdLength: 64,
      authenticate: (client, username, password, done) => {
        const refuse = (reason: string, code: number) => {
          metrics.brokerRejects.inc({ reason });
          done(authError(reason, code), false);
        };
        if (!username || !password) return refuse('anonymous', 4);
        const secret = password.toString('utf8');
        if (secret.startsWith('pat_')) {
          // A client id no device can have (':' is outside the id alphabet), so an integration can
          // never take over a device's session, nor a device an integration's.
          if (!client.id.startsWith(INTEGRATION_CLIENT_PREFIX)) return refuse('client-id', 2);
          store.db
            .selectFrom('api_tokens')
            .select(['role', 'revoked_at'])
            .where('hash', '=', hashSecret(secret))
            .executeTakeFirst()
            .then((t) => {
              if (!t || t.revoked_at !== null || !isRole(t.role)) return refuse('bad-token', 4);
              if (!this.o.fleetTopic) return refuse('no-fleet-topic', 5);
              this.integrations.add(client);
              done(null, true);
            })
            .catch((err: unknown) => {
              logger.error('broker authentication failed', { err: String(err) });
              refuse('internal', 3);
            });
          return;
        }
        if (client.id !== username) return refuse('client-id', 2);
        store.db
          .selectFrom('devices')
          .select(['mqtt_password_hash', 'revoked_at'])
          .where('id', '=', username)
          .executeTakeFirst()
          .then((d) => {
            if (!d || d.revoked_at !== null) return refuse('unknown-or-revoked', 5);
            if (!sameHash(d.mqtt_password_hash, hashSecret(password.toString('utf8'))))
              return refuse('bad-password', 4);
            done(null, true);
          })
          .catch((err: unknown) => {
            logger.error('broker authentication failed', { err: String(err) });
            refuse('internal', 3);
          });
      },
      authorizePublish: (client, packet, done) => {
        if (client === null) return done(null); // the controller itself
        if (this.integrations.has(client) || !mayPublish(client.id, packet.topic, this.acl())) {
          metrics.brokerRejects.inc({ reason: 'publish-acl' });
          return done(new Error('publish not allowed'));
        }
        done(null);
      },
      authorizeSubscribe: (client, sub, done) => {
        const allowed = this.integrations.has(client)
          ? sub.topic === this.o.fleetTopic
          : maySubscribe(client.id, sub.topic, this.acl());
        if (!allowed) {
          metrics.brokerRejects.inc({ reason: 'subscribe-acl' });
          return done(null, null); // refused (granted QoS 0x80), the session stays
        }
        done(null, sub);
      },
    });
    aedes.on('clientReady', (client) => {
      if (!this.integrations.has(client)) this.clients.set(client.id, client);
    });
    aedes.on('clientDisconnect', (client) => {
      if (this.clients.get(client.id) === client) this.clients.delete(client.id);
    });
    aedes.on('publish', (packet, client) => {
      // Only protocol topics go to the ingest; the agent's Home Assistant state topics stay on the broker.
      if (!client || !parseTopic(packet.topic, topicPrefix).ok) return;
      this.o.onMessage({
        topic: packet.topic,
        payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
        senderId: client.id,
      });
    });
    aedes.on('clientError', (client, err) =>
      logger.debug('mqtt client error', { client: client.id, err: err.message }),
    );
    aedes.on('connectionError', (_client, err) =>
      logger.debug('mqtt connection error', { err: err.message }),
    );
    this.aedes = aedes;

    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      aedes.handle(guardedConnection(socket, this.o.maxPacketBytes));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new PerchError('E_BROKER_PORT_IN_USE', `MQTT port ${this.o.port} is already in use`, {
                port: this.o.port,
              })
            : err,
        );
      });
      server.listen(this.o.port, this.o.host, () => resolve());
    });
  }

  publishRetained(topic: string, payload: string): Promise<void> {
    return this.publishWith(topic, payload, true);
  }

  publish(topic: string, payload: string): Promise<void> {
    return this.publishWith(topic, payload, false);
  }

  private publishWith(topic: string, payload: string, retain: boolean): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.reject(new PerchError('E_BROKER_UNAVAILABLE', 'broker not started'));
    return new Promise((resolve, reject) => {
      aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  async addDevice(): Promise<void> {
    // Credentials are checked against the database at each connect: nothing to provision.
  }

  async removeDevice(deviceId: string): Promise<void> {
    const client = this.clients.get(deviceId);
    if (client) await new Promise<void>((resolve) => client.close(() => resolve()));
  }

  connectedDevices(): string[] {
    return [...this.clients.keys()];
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    // server.close() waits for every connection, including ones that never authenticated.
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.aedes ? this.aedes.close(() => resolve()) : resolve()));
  }
}
