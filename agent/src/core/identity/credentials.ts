import { isValidId, PerchError } from '@perch/shared';
import { readJsonIfExists, writeFileAtomic } from '../fs-atomic';

/** What enrollment gives the device; stored 0600. */
export interface Credentials {
  deviceId: string;
  controllerUrl: string;
  deviceToken: string;
  mqtt: {
    url: string;
    username: string;
    password: string;
    clientId: string;
    topicPrefix: string;
  };
}

const str = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** Checks an enrollment response or a stored credentials file; throws a coded error naming the field. */
export function parseCredentials(
  value: unknown,
  code: 'E_AGENT_ENROLL_FAILED' | 'E_AGENT_STATE_CORRUPT',
): Credentials {
  const v = value as Record<string, unknown> | null;
  const m = (v?.mqtt ?? null) as Record<string, unknown> | null;
  const bad = (field: string) => new PerchError(code, `credentials: ${field} is missing or invalid`);
  if (!v || typeof v !== 'object') throw bad('(root)');
  if (!isValidId(v.deviceId)) throw bad('deviceId');
  if (!str(v.controllerUrl)) throw bad('controllerUrl');
  if (!str(v.deviceToken)) throw bad('deviceToken');
  if (!m || typeof m !== 'object') throw bad('mqtt');
  for (const f of ['url', 'username', 'password', 'clientId'] as const)
    if (!str(m[f])) throw bad(`mqtt.${f}`);
  const topicPrefix = m.topicPrefix === undefined ? 'perch' : m.topicPrefix;
  if (!str(topicPrefix, 128)) throw bad('mqtt.topicPrefix');
  return {
    deviceId: v.deviceId,
    controllerUrl: v.controllerUrl,
    deviceToken: v.deviceToken,
    mqtt: {
      url: m.url as string,
      username: m.username as string,
      password: m.password as string,
      clientId: m.clientId as string,
      topicPrefix,
    },
  };
}

export function loadCredentials(file: string): Credentials | undefined {
  let raw: unknown;
  try {
    raw = readJsonIfExists(file);
  } catch (err) {
    throw new PerchError('E_AGENT_STATE_CORRUPT', `credentials file unreadable: ${String(err)}`);
  }
  return raw === undefined ? undefined : parseCredentials(raw, 'E_AGENT_STATE_CORRUPT');
}

export function saveCredentials(file: string, creds: Credentials): void {
  writeFileAtomic(file, JSON.stringify(creds, null, 2), 0o600);
}
