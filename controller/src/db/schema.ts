import type { Generated } from 'kysely';

/**
 * Table types. Times are integer milliseconds since the epoch; JSON documents are TEXT columns holding
 * JSON (parsed in code, never queried with dialect-specific JSON operators) so SQLite and PostgreSQL run
 * the same queries.
 */
export interface ApiTokenTable {
  id: string;
  name: string;
  role: string;
  hash: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface EnrollTokenTable {
  id: string;
  name: string;
  hash: string;
  expires_at: number;
  max_uses: number;
  uses: number;
  tags: string;
  created_at: number;
  revoked_at: number | null;
}

export interface DeviceTable {
  id: string;
  public_key: string;
  key_fingerprint: string;
  mqtt_password_hash: string;
  device_token_hash: string;
  hostname: string | null;
  enroll_token_id: string;
  enrolled_at: number;
  revoked_at: number | null;
  last_seen_at: number | null;
  online: number;
  reported: string | null;
  reported_at: number | null;
}

export interface DeviceTagTable {
  device_id: string;
  tag: string;
}

export interface DesiredTable {
  device_id: string;
  rev: number;
  doc: string;
  updated_at: number;
}

export interface ModelTable {
  name: string;
  security_version: number;
  created_at: number;
}

export interface ModelVersionTable {
  model: string;
  version: string;
  security_version: number;
  spec: string;
  files: string;
  bundle_sha256: string;
  bundle_length: number;
  target: string;
  created_at: number;
}

export interface TelemetryTable {
  msg_id: string;
  device_id: string;
  ts: number;
  received_at: number;
  /** JSON object metric -> number. */
  metrics: string;
  /** JSON object of the message's info, or null. */
  info: string | null;
}

export interface EventTable {
  msg_id: string;
  device_id: string;
  ts: number;
  event_id: string;
  phase: string;
  pipeline: string;
  label: string;
  score: number;
  body: string;
  received_at: number;
}

export interface AuditTable {
  id: string;
  ts: number;
  actor: string;
  action: string;
  target: string;
  details: string | null;
}

export interface WebhookSubscriptionTable {
  id: string;
  url: string;
  secret: string;
  /** JSON of WebhookFilter. */
  filter: string;
  enabled: number;
  description: string | null;
  created_at: number;
}

export interface WebhookDeliveryTable {
  id: string;
  subscription_id: string;
  body: string;
  created_at: number;
  attempts: number;
  next_attempt_at: number;
  status: 'pending' | 'dead';
  last_error: string | null;
  last_status: number | null;
  dead_at: number | null;
}

export interface IntegrationCursorTable {
  name: string;
  /** `received_at` (ms): every event stored before it has been handed over. */
  position: number;
}

export interface Database {
  api_tokens: ApiTokenTable;
  enroll_tokens: EnrollTokenTable;
  devices: DeviceTable;
  device_tags: DeviceTagTable;
  desired: DesiredTable;
  models: ModelTable;
  model_versions: ModelVersionTable;
  telemetry: TelemetryTable;
  events: EventTable;
  audit_log: AuditTable;
  webhook_subscriptions: WebhookSubscriptionTable;
  webhook_deliveries: WebhookDeliveryTable;
  integration_cursors: IntegrationCursorTable;
}

/** Unused marker so that `Generated` stays importable for future auto columns. */
export type MaybeGenerated<T> = Generated<T>;
