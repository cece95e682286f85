import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { assertId, PerchError, safeJsonParse, systemClock, type Clock, type Logger } from '@perch/shared';
import {
  controllerRoleAcls,
  deviceRoleAcls,
  deviceRoleName,
  INTEGRATIONS_ROLE,
  integrationsRoleAcls,
  type AclOptions,
  type DynsecAcl,
} from './dynsec-acl';

/** Control topic of Mosquitto's dynamic-security plugin, API version 1. */
export const DYNSEC_TOPIC = '$CONTROL/dynamic-security/v1';
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_TOPIC}/response`;

/** One command as the plugin documents it: `{command, ...arguments}`. */
export interface DynsecCommand {
  command: string;
  [key: string]: unknown;
}

export interface DynsecClientOptions extends AclOptions {
  /** A connected MQTT 5 client logged in as the dynamic-security admin (deploy/mosquitto/README.md). */
  client: MqttClient;
  logger: Logger;
  clock?: Clock;
  /** How long to wait for the plugin's answer to one request (default 10 s). */
  timeoutMs?: number;
  /** Role of the controller's runtime client (default `perch-controller`). */
  controllerRole?: string;
}

export interface DeviceCredentials {
  deviceId: string;
  password: string;
  /**
   * Pin the MQTT client id the device must use (recommended: the device id). Without it the
   * username alone identifies the device.
   */
  clientId?: string;
}

interface Pending {
  command: string;
  resolve: (data: Record<string, unknown>) => void;
  reject: (err: PerchError) => void;
}

/** Plugin error texts (Mosquitto 2.0) that mean "already in the wanted state". */
const ALREADY_EXISTS = /already exists/i;
const NOT_FOUND = /not found/i;

/**
 * Request/response client for `$CONTROL/dynamic-security/v1`. Every command carries its own
 * correlation id, so several controller replicas may share the admin login: each only settles the
 * answers it asked for. A request fails with E_DYNSEC_TIMEOUT when no answer comes, with
 * E_DYNSEC_COMMAND when the plugin refuses it, and with E_DYNSEC_UNAVAILABLE when not connected.
 */
export class DynsecClient {
  private readonly pending = new Map<string, Pending>();
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private started = false;
  private readonly onMessage = (topic: string, payload: Buffer) => {
    if (topic === DYNSEC_RESPONSE_TOPIC) this.handleResponse(payload);
  };

  constructor(private readonly options: DynsecClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Subscribes to the response topic. The admin client must be allowed to (E_DYNSEC_UNAVAILABLE). */
  async start(): Promise<void> {
    if (this.started) return;
    const { client } = this.options;
    client.on('message', this.onMessage);
    this.started = true;
    try {
      await client.subscribeAsync(DYNSEC_RESPONSE_TOPIC, { qos: 1 });
    } catch (err) {
      this.stop();
      throw new PerchError(
        'E_DYNSEC_UNAVAILABLE',
        `cannot subscribe to ${DYNSEC_RESPONSE_TOPIC}: ${(err as Error).message}`,
        undefined,
        { cause: err },
      );
    }
  }

  /** Detaches from the client and fails every request still waiting. */
  stop(): void {
    this.options.client.off('message', this.onMessage);
    this.started = false;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new PerchError('E_DYNSEC_UNAVAILABLE', `dynamic-security client stopped before ${p.command}`));
    }
  }

  /** Sends commands in one request; resolves with each command's `data` (or {}), in order. */
  async send(commands: DynsecCommand[]): Promise<Array<Record<string, unknown>>> {
    if (!this.started) throw new PerchError('E_DYNSEC_UNAVAILABLE', 'DynsecClient.start() was not called');
    const { client } = this.options;
    if (!client.connected) {
      throw new PerchError('E_DYNSEC_UNAVAILABLE', 'not connected to the broker');
    }
    const tagged = commands.map((c) => ({ ...c, correlationData: randomUUID() }));
    const answers = tagged.map(
      (c) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const timer = this.clock.setTimeout(() => {
            if (!this.pending.delete(c.correlationData)) return;
            reject(
              new PerchError('E_DYNSEC_TIMEOUT', `no answer to ${c.command} within ${this.timeoutMs} ms`, {
                command: c.command,
              }),
            );
          }, this.timeoutMs);
          this.pending.set(c.correlationData, {
            command: c.command,
            resolve: (data) => {
              this.clock.clearTimeout(timer);
              resolve(data);
            },
            reject: (err) => {
              this.clock.clearTimeout(timer);
              reject(err);
            },
          });
        }),
    );
    // Attach handlers now: a failed publish below rejects them all at once.
    const settled = Promise.allSettled(answers);
    try {
      await client.publishAsync(DYNSEC_TOPIC, JSON.stringify({ commands: tagged }), { qos: 1 });
    } catch (err) {
      for (const c of tagged) {
        this.pending.get(c.correlationData)?.reject(
          new PerchError(
            'E_DYNSEC_UNAVAILABLE',
            `publishing ${c.command} failed: ${(err as Error).message}`,
            {
              command: c.command,
            },
          ),
        );
        this.pending.delete(c.correlationData);
      }
    }
    const results = await settled;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<Record<string, unknown>>).value);
  }

  /** Sends one command; resolves with its `data`. */
  async command(command: DynsecCommand): Promise<Record<string, unknown>> {
    const [data] = await this.send([command]);
    return data ?? {};
  }

  private handleResponse(payload: Buffer): void {
    const parsed = safeJsonParse(payload);
    if (!parsed.ok) {
      this.options.logger.warn('unreadable dynamic-security response', { code: parsed.error.code });
      return;
    }
    const responses = (parsed.value as { responses?: unknown }).responses;
    if (!Array.isArray(responses)) return;
    for (const r of responses as Array<Record<string, unknown>>) {
      const id = typeof r.correlationData === 'string' ? r.correlationData : undefined;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p || id === undefined) continue; // another replica's request, or one that timed out
      this.pending.delete(id);
      if (typeof r.error === 'string') {
        p.reject(
          new PerchError('E_DYNSEC_COMMAND', `${p.command}: ${r.error}`, {
            command: p.command,
            error: r.error,
          }),
        );
      } else {
        const data = r.data;
        p.resolve(data && typeof data === 'object' ? (data as Record<string, unknown>) : {});
      }
    }
  }

  /** Runs a command and treats the listed plugin errors as success (idempotent steps). */
  private async tolerant(command: DynsecCommand, tolerate: RegExp): Promise<boolean> {
    try {
      await this.command(command);
      return true;
    } catch (err) {
      if (err instanceof PerchError && err.code === 'E_DYNSEC_COMMAND' && tolerate.test(err.message)) {
        return false;
      }
      throw err;
    }
  }

  /**
   * Makes a role carry exactly these ACLs. Creates it, or, when it exists, adds missing entries
   * before removing stale ones, so a device never passes through a moment with no access at all.
   */
  async ensureRole(rolename: string, acls: DynsecAcl[]): Promise<void> {
    const created = await this.tolerant({ command: 'createRole', rolename, acls }, ALREADY_EXISTS);
    if (created) return;
    const data = await this.command({ command: 'getRole', rolename });
    const current = ((data.role as { acls?: DynsecAcl[] } | undefined)?.acls ?? []).map((a) => ({
      ...a,
      priority: a.priority ?? 0,
    }));
    const key = (a: DynsecAcl) => `${a.acltype} ${a.topic}`;
    const same = (a: DynsecAcl, b: DynsecAcl) => a.allow === b.allow && a.priority === b.priority;
    const wanted = new Map(acls.map((a) => [key(a), a]));
    const have = new Map(current.map((a) => [key(a), a]));
    for (const [k, a] of wanted) {
      const old = have.get(k);
      if (old && same(old, a)) continue;
      if (old) await this.command({ command: 'removeRoleACL', rolename, acltype: a.acltype, topic: a.topic });
      await this.command({ command: 'addRoleACL', rolename, ...a });
    }
    for (const [k, a] of have) {
      if (!wanted.has(k)) {
        await this.command({ command: 'removeRoleACL', rolename, acltype: a.acltype, topic: a.topic });
      }
    }
  }

  /** The per-device role with the ACL of DESIGN.md. */
  async ensureDeviceRole(deviceId: string): Promise<string> {
    const rolename = deviceRoleName(deviceId);
    await this.ensureRole(rolename, deviceRoleAcls(deviceId, this.options));
    return rolename;
  }

  /** The role of the controller's runtime client; returns its name. */
  async ensureControllerRole(): Promise<string> {
    const rolename = this.options.controllerRole ?? 'perch-controller';
    await this.ensureRole(rolename, controllerRoleAcls(this.options));
    return rolename;
  }

  /** Creates a client; fails with E_DYNSEC_COMMAND if the username exists. */
  async createClient(spec: {
    username: string;
    password: string;
    clientId?: string;
    roles?: string[];
  }): Promise<void> {
    await this.command({
      command: 'createClient',
      username: spec.username,
      password: spec.password,
      ...(spec.clientId === undefined ? {} : { clientid: spec.clientId }),
      roles: (spec.roles ?? []).map((rolename) => ({ rolename, priority: 0 })),
    });
  }

  /**
   * Enrollment: the device's role, then its client (username = device id). Re-running it for an
   * existing device (re-enrollment) sets the new password, re-attaches the role and re-enables it.
   */
  async provisionDevice(credentials: DeviceCredentials): Promise<void> {
    const username = assertId(credentials.deviceId, 'device id');
    const rolename = await this.ensureDeviceRole(username);
    await this.ensureClient({
      username,
      password: credentials.password,
      ...(credentials.clientId === undefined ? {} : { clientId: credentials.clientId }),
      role: rolename,
    });
  }

  /**
   * Makes a client exist, enabled, with this password and (at least) this role: creates it, or for
   * an existing one sets the password first (the old one must stop working before anything else is
   * restored), pins the client id when given, attaches the role when missing and re-enables it.
   */
  async ensureClient(spec: {
    username: string;
    password: string;
    clientId?: string;
    role: string;
  }): Promise<void> {
    const { username, password, clientId, role } = spec;
    try {
      await this.createClient({
        username,
        password,
        ...(clientId === undefined ? {} : { clientId }),
        roles: [role],
      });
      return;
    } catch (err) {
      if (!(
        err instanceof PerchError &&
        err.code === 'E_DYNSEC_COMMAND' &&
        ALREADY_EXISTS.test(err.message)
      )) {
        throw err;
      }
    }
    await this.command({ command: 'setClientPassword', username, password });
    if (clientId !== undefined) await this.command({ command: 'setClientId', username, clientid: clientId });
    // Mosquitto 2.0 answers "Internal error" to adding a role the client already has: look first.
    const info = await this.getClient(username);
    if (!info?.roles?.some((r) => r.rolename === role)) {
      await this.command({ command: 'addClientRole', username, rolename: role, priority: 0 });
    }
    await this.command({ command: 'enableClient', username });
  }

  /** The read-only role for integration clients (fleet topic); returns its name. */
  async ensureIntegrationsRole(): Promise<string> {
    await this.ensureRole(INTEGRATIONS_ROLE, integrationsRoleAcls(this.options));
    return INTEGRATIONS_ROLE;
  }

  /**
   * Revocation: the plugin refuses new logins and disconnects a live session of this username.
   * Resolves false when no such client exists.
   */
  async disableClient(username: string): Promise<boolean> {
    return this.tolerant({ command: 'disableClient', username }, NOT_FOUND);
  }

  async enableClient(username: string): Promise<void> {
    await this.command({ command: 'enableClient', username });
  }

  /** Removes a client (also disconnecting it); resolves false when it did not exist. */
  async deleteClient(username: string): Promise<boolean> {
    return this.tolerant({ command: 'deleteClient', username }, NOT_FOUND);
  }

  /** Removes a device's client and role. */
  async deleteDevice(deviceId: string): Promise<void> {
    await this.deleteClient(assertId(deviceId, 'device id'));
    await this.tolerant({ command: 'deleteRole', rolename: deviceRoleName(deviceId) }, NOT_FOUND);
  }

  /** The plugin's view of a client, or undefined. */
  async getClient(username: string): Promise<DynsecClientInfo | undefined> {
    try {
      const data = await this.command({ command: 'getClient', username });
      return data.client as DynsecClientInfo;
    } catch (err) {
      if (err instanceof PerchError && err.code === 'E_DYNSEC_COMMAND' && NOT_FOUND.test(err.message)) {
        return undefined;
      }
      throw err;
    }
  }
}

export interface DynsecClientInfo {
  username: string;
  clientid?: string;
  disabled?: boolean;
  roles?: Array<{ rolename: string; priority?: number }>;
}
