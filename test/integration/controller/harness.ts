import { httpJson, type HttpMethod } from '../../helpers/http';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger, type Clock } from '@perch/shared';
import {
  controllerConfigSchema,
  enrollChallenge,
  startController,
  type RunningController,
  type TufLifetimes,
} from '@perch/controller';
import { tempDir } from '../../helpers/tmp';
import { TestMosquitto } from '../../helpers/mosquitto';
import { startPerchBroker, type PerchBroker } from '../integrations/broker';

export const silentLogger = createLogger({ namespace: 'test', silent: true });

export interface Harness {
  ctl: RunningController;
  /**
   * Stops the controller and starts it again on the same data folder (new ports); `whileStopped` runs
   * in between.
   */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
  adminToken: string;
  home: string;
  mosquitto?: TestMosquitto;
  /** Mode `mosquitto`: the broker started from deploy/mosquitto/mosquitto.conf and its admin login. */
  perch?: PerchBroker;
  close(): Promise<void>;
}

/** Users of the generic broker in mode `external`: the controller and one device the operator made. */
export const EXTERNAL_USERS: Record<string, string> = {
  'perch-controller': 'controller-secret-1',
  'ext-device-1': 'ext-device-secret-1',
};

export async function startHarness(
  options: {
    mode?: 'embedded' | 'external' | 'mosquitto';
    /** Extra top-level config sections (e.g. `webhooks`, `homeAssistant`). */
    config?: Record<string, unknown>;
    /** Webhook retry jitter source. */
    random?: () => number;
    listen?: boolean;
    tufClock?: Clock;
    tufLifetimes?: TufLifetimes;
    clock?: Clock;
    limits?: Record<string, number>;
    /** The controller URL handed to devices at enrollment (e.g. a fault proxy in front of it). */
    publicUrl?: string;
    /** Mosquitto persistence in external mode (default off). */
    persistence?: boolean;
  } = {},
): Promise<Harness> {
  const { dir, cleanup } = tempDir('perch-ctl-');
  let mosquitto: TestMosquitto | undefined;
  let perch: PerchBroker | undefined;
  let mqttConfig: Record<string, unknown> = { mode: 'embedded', host: '127.0.0.1', port: 0 };
  if (options.mode === 'external') {
    // A generic MQTT 5 broker whose users the operator manages: a password file, no ACL.
    mosquitto = await TestMosquitto.start({
      persistence: options.persistence ?? false,
      users: EXTERNAL_USERS,
    });
    mqttConfig = {
      mode: 'external',
      url: mosquitto.url,
      username: 'perch-controller',
      password: EXTERNAL_USERS['perch-controller'],
    };
  } else if (options.mode === 'mosquitto') {
    perch = await startPerchBroker({ persistence: options.persistence ?? false });
    mosquitto = perch.broker;
    mqttConfig = {
      mode: 'mosquitto',
      url: perch.broker.url,
      username: perch.admin.username,
      password: perch.admin.password,
    };
  }
  const closeBroker = async () => {
    if (perch) await perch.close();
    else await mosquitto?.close();
  };
  const config = controllerConfigSchema.parse({
    ...(options.config ?? {}),
    home: dir,
    http: { host: '127.0.0.1', port: 0, ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}) },
    mqtt: mqttConfig,
    limits: options.limits ?? {},
    retention: {},
    tuf: {},
  });
  const start = () =>
    startController(config, {
      logger: silentLogger,
      listen: options.listen ?? true,
      cron: false,
      ...(options.random ? { random: options.random } : {}),
      ...(options.tufClock ? { tufClock: options.tufClock } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.tufLifetimes ? { tufLifetimes: options.tufLifetimes } : {}),
    });
  try {
    const ctl = await start();
    const h: Harness = {
      ctl,
      restart: async (whileStopped) => {
        await h.ctl.stop();
        await whileStopped?.();
        h.ctl = await start();
      },
      adminToken: ctl.adminToken ?? '',
      home: dir,
      ...(mosquitto ? { mosquitto } : {}),
      ...(perch ? { perch } : {}),
      close: async () => {
        await h.ctl.stop();
        await closeBroker();
        cleanup();
      },
    };
    return h;
  } catch (err) {
    await closeBroker();
    cleanup();
    throw err;
  }
}

export function api<T = Record<string, unknown>>(
  h: Harness,
  method: HttpMethod,
  url: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  return httpJson<T>(h.ctl.url, method, url, token, body);
}

export async function createEnrollToken(h: Harness, body: Record<string, unknown> = {}): Promise<string> {
  const res = await api<{ token: string }>(h, 'POST', '/api/v1/enroll-tokens', h.adminToken, body);
  if (res.status !== 201) throw new Error(`enroll token: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

export interface DeviceKeys {
  privateKey: KeyObject;
  publicPem: string;
}

export function deviceKeys(): DeviceKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

export function enrollBody(
  token: string,
  keys: DeviceKeys = deviceKeys(),
  extra: Record<string, unknown> = {},
  signWith?: KeyObject,
) {
  const timestamp = (extra.timestamp as string | undefined) ?? new Date().toISOString();
  const proof = sign(
    null,
    enrollChallenge(token, keys.publicPem, timestamp),
    signWith ?? keys.privateKey,
  ).toString('base64');
  return { token, publicKey: keys.publicPem, timestamp, proof, ...extra };
}

export interface Enrolled {
  deviceId: string;
  mqtt: { url: string; username: string; password: string; clientId: string; topicPrefix: string };
  deviceToken: string;
  tufRoot: Record<string, unknown>;
  controllerUrl: string;
}

export async function enroll(
  h: Harness,
  token?: string,
  extra: Record<string, unknown> = {},
): Promise<Enrolled> {
  const res = await api<Enrolled>(
    h,
    'POST',
    '/api/v1/enroll',
    undefined,
    enrollBody(token ?? (await createEnrollToken(h)), deviceKeys(), extra),
  );
  if (res.status !== 201) throw new Error(`enroll: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Connects as the device; resolves on CONNACK success, rejects on refusal. No reconnects. */
export function connectDevice(
  d: Enrolled,
  overrides: { password?: string; clientId?: string; username?: string; url?: string } = {},
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(overrides.url ?? d.mqtt.url, {
      username: overrides.username ?? d.mqtt.username,
      password: overrides.password ?? d.mqtt.password,
      clientId: overrides.clientId ?? d.mqtt.clientId,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      protocolVersion: 4,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before connect')));
  });
}

export function waitClosed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) return resolve();
    client.once('close', () => resolve());
  });
}

let counter = 0;
export function telemetry(
  metrics: Record<string, number> = { 'system.cpu_percent': 12.5 },
  id?: string,
): string {
  return JSON.stringify({
    v: 1,
    id: id ?? `msg-${process.pid}-${Date.now()}-${++counter}`,
    ts: Date.now(),
    metrics,
  });
}

export const BLAZEFACE_SPEC = {
  schemaVersion: 1,
  input: {
    kind: 'image',
    name: 'input:0',
    layout: 'NHWC',
    width: 128,
    height: 128,
    colour: 'RGB',
    dtype: 'float32',
    resize: 'stretch',
    normalisation: { kind: 'scaleOffset', scale: 1 / 127.5, offset: -1 },
  },
  postprocessor: { kind: 'blazeface', params: {} },
};

/** Multipart upload of a bundle over the real HTTP port. */
export async function uploadBundle(
  h: Harness,
  name: string,
  version: string,
  parts: {
    model?: Buffer;
    spec?: Buffer | string;
    labels?: Buffer | string;
    sample?: Buffer;
    extra?: Record<string, Buffer | string>;
    securityVersion?: number;
  },
  token = h.adminToken,
): Promise<{
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
}> {
  const form = new FormData();
  if (parts.model) form.append('model', new Blob([parts.model]), 'model.onnx');
  if (parts.spec !== undefined) form.append('spec', new Blob([parts.spec]), 'spec.json');
  if (parts.labels !== undefined) form.append('labels', new Blob([parts.labels]), 'labels.txt');
  if (parts.sample) form.append('sample', new Blob([parts.sample]), 'sample.bin');
  for (const [k, v] of Object.entries(parts.extra ?? {})) form.append(k, new Blob([v]), k);
  if (parts.securityVersion !== undefined) form.append('securityVersion', String(parts.securityVersion));
  const res = await fetch(`${h.ctl.url}/api/v1/models/${name}/versions/${version}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } },
  };
}

/** Puts `models` (by name and version) and `pipelines` into a device's desired state; throws unless 200. */
export async function assignModels(
  h: Harness,
  deviceId: string,
  models: Array<{ name: string; version: string }>,
  pipelines: unknown[] = [],
): Promise<{ rev: number }> {
  const res = await api<{ desired: { rev: number } }>(
    h,
    'PUT',
    `/api/v1/devices/${deviceId}/desired`,
    h.adminToken,
    { models, pipelines },
  );
  if (res.status !== 200) throw new Error(`assign: ${res.status} ${JSON.stringify(res.body)}`);
  return { rev: res.body.desired.rev };
}
