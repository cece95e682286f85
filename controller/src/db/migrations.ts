import { type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * Versioned migrations, written with the kysely schema builder only (portable to PostgreSQL).
 * Never edit a released migration: add a new one.
 */
const migrations: Record<string, Migration> = {
  '0001-initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(128)', (c) => c.notNull())
        .addColumn('role', 'varchar(16)', (c) => c.notNull())
        .addColumn('hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('last_used_at', 'bigint')
        .execute();
      await db.schema
        .createTable('enroll_tokens')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(128)', (c) => c.notNull())
        .addColumn('hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('max_uses', 'integer', (c) => c.notNull())
        .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema
        .createTable('devices')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('key_fingerprint', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('mqtt_password_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('device_token_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('hostname', 'varchar(255)')
        .addColumn('enroll_token_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('enrolled_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('last_seen_at', 'bigint')
        .addColumn('online', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('reported', 'text')
        .addColumn('reported_at', 'bigint')
        .execute();
      await db.schema
        .createTable('device_tags')
        .addColumn('device_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('tag', 'varchar(64)', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_tags_pk', ['device_id', 'tag'])
        .execute();
      await db.schema.createIndex('device_tags_tag').on('device_tags').column('tag').execute();
      await db.schema
        .createTable('desired')
        .addColumn('device_id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('rev', 'integer', (c) => c.notNull())
        .addColumn('doc', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('models')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('security_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('model_versions')
        .addColumn('model', 'varchar(64)', (c) => c.notNull())
        .addColumn('version', 'varchar(64)', (c) => c.notNull())
        .addColumn('security_version', 'integer', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('files', 'text', (c) => c.notNull())
        .addColumn('bundle_sha256', 'varchar(64)', (c) => c.notNull())
        .addColumn('bundle_length', 'bigint', (c) => c.notNull())
        .addColumn('target', 'varchar(512)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('model_versions_pk', ['model', 'version'])
        .execute();
      // One row per telemetry message, metrics as JSON: a third of the B-tree writes of a row per
      // metric, which is what bounds ingest throughput. Queries read one device's range and pick the metric.
      await db.schema
        .createTable('telemetry')
        .addColumn('msg_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('device_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('metrics', 'text', (c) => c.notNull())
        .addColumn('info', 'text')
        .addPrimaryKeyConstraint('telemetry_pk', ['device_id', 'msg_id'])
        .execute();
      await db.schema
        .createIndex('telemetry_device_ts')
        .on('telemetry')
        .columns(['device_id', 'ts'])
        .execute();
      await db.schema
        .createTable('events')
        .addColumn('msg_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('device_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('event_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('phase', 'varchar(16)', (c) => c.notNull())
        .addColumn('pipeline', 'varchar(64)', (c) => c.notNull())
        .addColumn('label', 'varchar(128)', (c) => c.notNull())
        .addColumn('score', 'double precision', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('events_pk', ['device_id', 'msg_id'])
        .execute();
      await db.schema.createIndex('events_ts').on('events').columns(['device_id', 'ts']).execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'varchar(128)', (c) => c.notNull())
        .addColumn('action', 'varchar(64)', (c) => c.notNull())
        .addColumn('target', 'varchar(128)', (c) => c.notNull())
        .addColumn('details', 'text')
        .execute();
      await db.schema.createIndex('audit_log_ts').on('audit_log').column('ts').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of [
        'audit_log',
        'events',
        'telemetry',
        'model_versions',
        'models',
        'desired',
        'device_tags',
        'devices',
        'enroll_tokens',
        'api_tokens',
      ]) {
        await db.schema.dropTable(t).ifExists().execute();
      }
    },
  },
  '0002-webhooks': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('webhook_subscriptions')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('url', 'varchar(2048)', (c) => c.notNull())
        .addColumn('secret', 'varchar(256)', (c) => c.notNull())
        .addColumn('filter', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('description', 'varchar(500)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('subscription_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('last_status', 'integer')
        .addColumn('dead_at', 'bigint')
        .execute();
      // Recovery after a crash reads the events stored since the cursor below.
      await db.schema.createIndex('events_received_at').on('events').column('received_at').execute();
      // How far the hand-over of stored events to integrations got (integrations/event-fanout.ts).
      await db.schema
        .createTable('integration_cursors')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('position', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_due')
        .on('webhook_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('integration_cursors').ifExists().execute();
      await db.schema.dropIndex('events_received_at').ifExists().execute();
      await db.schema.dropTable('webhook_deliveries').ifExists().execute();
      await db.schema.dropTable('webhook_subscriptions').ifExists().execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
