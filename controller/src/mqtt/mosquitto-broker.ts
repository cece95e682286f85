import { createHmac } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { childLogger, PerchError } from '@perch/shared';
import { DynsecClient } from '../broker/dynsec';
import { MOSQUITTO_RUNTIME_USERNAME } from '../config';
import type { DeviceBus } from './bus';
import { connectMqtt5, ExternalBroker, type ExternalBrokerOptions } from './external-broker';

export interface MosquittoBrokerOptions extends Omit<ExternalBrokerOptions, 'username' | 'password'> {
  /** The dynamic-security admin client made by `mosquitto_ctrl dynsec init` (deploy/mosquitto/README.md). */
  adminUsername: string;
  adminPassword: string;
  /** Username of the controller's runtime client, created by the controller (default `perch-controller`). */
  runtimeUsername?: string;
  /** Home Assistant discovery prefix devices may publish their discovery under. */
  homeAssistantPrefix: string;
  /** How long to wait for the plugin's answer to one command (default 10 s). */
  dynsecTimeoutMs?: number;
}

export const DEFAULT_RUNTIME_USERNAME = MOSQUITTO_RUNTIME_USERNAME;

/**
 * The runtime client's password, derived from the admin password: every replica given the same
 * admin login computes the same one, so a restarting replica never locks the others out, and
 * nothing extra has to be stored. Rotating the admin password rotates it at the next start.
 */
export function runtimePassword(adminUsername: string, adminPassword: string): string {
  return createHmac('sha256', adminPassword)
    .update(`perch-controller-runtime:${adminUsername}`)
    .digest('base64url');
}

/**
 * Broker mode `mosquitto`: Mosquitto 2 with the dynamic-security plugin, configured as in
 * deploy/mosquitto. The controller logs in twice:
 *
 * - as the plugin's admin (only `$CONTROL/dynamic-security/#`), to provision the roles
 *   `perch-controller` and `perch-integrations`, its own runtime client, and one client and role per
 *   device at enrollment (dynsec.ts); revocation disables the device's client, which refuses the next
 *   login and disconnects a live session;
 * - as its runtime client (`perch-controller`), which reads device topics and publishes desired
 *   state, commands, the fleet topic and Home Assistant discovery removals (ExternalBroker).
 */
export class MosquittoBroker implements DeviceBus {
  private admin?: MqttClient;
  private dynsec?: DynsecClient;
  private runtime?: ExternalBroker;

  constructor(private readonly o: MosquittoBrokerOptions) {}

  async start(): Promise<void> {
    const { o } = this;
    const runtimeUsername = o.runtimeUsername ?? DEFAULT_RUNTIME_USERNAME;
    try {
      this.admin = await connectMqtt5(o.url, {
        username: o.adminUsername,
        password: o.adminPassword,
        clientId: `${runtimeUsername}-admin-${process.pid}-${Date.now().toString(36)}`,
        ...(o.connectTimeoutMs === undefined ? {} : { timeoutMs: o.connectTimeoutMs }),
      });
      this.admin.on('error', (err) =>
        o.logger.warn('dynamic-security admin client error', { err: err.message }),
      );
      const dynsec = new DynsecClient({
        client: this.admin,
        logger: childLogger(o.logger, 'dynsec'),
        prefix: o.topicPrefix,
        homeAssistantPrefix: o.homeAssistantPrefix,
        ...(o.dynsecTimeoutMs === undefined ? {} : { timeoutMs: o.dynsecTimeoutMs }),
      });
      this.dynsec = dynsec;
      await dynsec.start();
      const role = await dynsec.ensureControllerRole();
      await dynsec.ensureIntegrationsRole();
      await dynsec.ensureClient({
        username: runtimeUsername,
        password: runtimePassword(o.adminUsername, o.adminPassword),
        role,
      });
      this.runtime = new ExternalBroker({
        ...o,
        username: runtimeUsername,
        password: runtimePassword(o.adminUsername, o.adminPassword),
      });
      await this.runtime.start();
    } catch (err) {
      await this.stop().catch(() => undefined);
      if (err instanceof PerchError && err.code === 'E_DYNSEC_UNAVAILABLE') {
        throw new PerchError(
          'E_DYNSEC_UNAVAILABLE',
          `${err.message} (is mqtt.username the admin client of \`mosquitto_ctrl dynsec init\`?)`,
          undefined,
          { cause: err },
        );
      }
      throw err;
    }
  }

  private need(): { dynsec: DynsecClient; runtime: ExternalBroker } {
    if (!this.dynsec || !this.runtime) throw new PerchError('E_BROKER_UNAVAILABLE', 'broker not started');
    return { dynsec: this.dynsec, runtime: this.runtime };
  }

  /** Enrollment: the device's role and client; the client id is pinned to the device id. */
  async addDevice(deviceId: string, password: string): Promise<void> {
    await this.need().dynsec.provisionDevice({ deviceId, password, clientId: deviceId });
  }

  /** Revocation: the plugin disconnects the live session and refuses the next login (CONNACK 0x87). */
  async removeDevice(deviceId: string): Promise<void> {
    await this.need().dynsec.disableClient(deviceId);
  }

  publishRetained(topic: string, payload: string): Promise<void> {
    return this.need().runtime.publishRetained(topic, payload);
  }

  publish(topic: string, payload: string): Promise<void> {
    return this.need().runtime.publish(topic, payload);
  }

  async stop(): Promise<void> {
    this.dynsec?.stop();
    this.dynsec = undefined;
    await this.runtime?.stop();
    this.runtime = undefined;
    await this.admin?.endAsync();
    this.admin = undefined;
  }
}
