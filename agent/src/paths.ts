import path from 'node:path';

/**
 * Where the agent keeps its state. Every path derives from one state folder and each can be overridden,
 * so tests point the agent at a temporary folder and nothing else touches the machine.
 */
export interface AgentPaths {
  readonly stateDir: string;
  /** Ed25519 private key, PEM, mode 0600. */
  readonly identityKey: string;
  /** Enrollment result: device id, MQTT credentials, controller URL, device token (0600). */
  readonly credentials: string;
  /** tuf-js metadata folder (root.json, timestamp.json ...). */
  readonly tufDir: string;
  /** The root received at enrollment, kept to recover from a truncated root.json. */
  readonly enrolledRoot: string;
  /** Model store: models/<name>/versions/<sha256> and models/<name>/pointers.json. */
  readonly modelsDir: string;
  /** Durable partial downloads. */
  readonly downloadsDir: string;
  /** SQLite database: outbox, executed commands. */
  readonly database: string;
  /** Snapshots written by pipelines. */
  readonly snapshotsDir: string;
  /** Last desired state seen (so a restart without network can act on it). */
  readonly desiredCache: string;
  /** What was announced to Home Assistant (to remove components of pipelines gone while down). */
  readonly homeAssistantState: string;
  /** sysfs thermal zones (CPU temperature). */
  readonly thermalDir: string;
}

export const DEFAULT_STATE_DIR = '/var/lib/perch-agent';

export function agentPaths(stateDir: string, overrides: Partial<AgentPaths> = {}): AgentPaths {
  const dir = path.resolve(stateDir);
  return {
    stateDir: dir,
    identityKey: path.join(dir, 'identity', 'device-key.pem'),
    credentials: path.join(dir, 'identity', 'credentials.json'),
    tufDir: path.join(dir, 'tuf'),
    enrolledRoot: path.join(dir, 'identity', 'enrolled-root.json'),
    modelsDir: path.join(dir, 'models'),
    downloadsDir: path.join(dir, 'downloads'),
    database: path.join(dir, 'agent.db'),
    snapshotsDir: path.join(dir, 'snapshots'),
    desiredCache: path.join(dir, 'desired.json'),
    homeAssistantState: path.join(dir, 'homeassistant.json'),
    thermalDir: '/sys/class/thermal',
    ...overrides,
  };
}
