import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { isValidId, PerchError } from '@perch/shared';
import type { AppDeps } from './context';
import { hashSecret, newSecret } from './auth/secrets';
import { audit } from './audit';

export interface EnrollRequest {
  token: string;
  publicKey: string;
  timestamp: string;
  proof: string;
  name?: string;
  hostname?: string;
}

export interface EnrollResult {
  deviceId: string;
  mqtt: { url: string; username: string; password: string; clientId: string; topicPrefix: string };
  tufRoot: unknown;
  controllerUrl: string;
  deviceToken: string;
}

/** The exact bytes a device signs (see README "Enrollment contract"). */
export function enrollChallenge(token: string, publicKey: string, timestamp: string): Buffer {
  return Buffer.from(['perch-enroll-v1', token, publicKey, timestamp].join('\n'), 'utf8');
}

export function parseDeviceKey(text: string): KeyObject {
  let key: KeyObject;
  try {
    key = text.includes('-----BEGIN')
      ? createPublicKey({ key: text, format: 'pem' })
      : createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new PerchError('E_ENROLL_KEY_INVALID', 'publicKey is not a readable SPKI public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new PerchError(
      'E_ENROLL_KEY_INVALID',
      `publicKey is ${key.asymmetricKeyType ?? 'unknown'}, expected ed25519`,
    );
  }
  return key;
}

function checkProof(req: EnrollRequest, key: KeyObject, now: number, skewMs: number): void {
  const ts = Date.parse(req.timestamp);
  if (!Number.isFinite(ts) || Math.abs(ts - now) > skewMs) {
    throw new PerchError(
      'E_ENROLL_PROOF_INVALID',
      'timestamp is missing or too far from the controller clock',
    );
  }
  const sig = Buffer.from(req.proof, 'base64');
  let valid: boolean;
  try {
    valid =
      sig.length === 64 && verify(null, enrollChallenge(req.token, req.publicKey, req.timestamp), key, sig);
  } catch {
    valid = false;
  }
  if (!valid) throw new PerchError('E_ENROLL_PROOF_INVALID', 'proof does not verify against publicKey');
}

/**
 * Enrolls a device. The token use is taken with one conditional UPDATE inside a durable transaction,
 * so two devices racing for a single-use token cannot both win (SQLite and PostgreSQL alike).
 */
export async function enrollDevice(deps: AppDeps, req: EnrollRequest): Promise<EnrollResult> {
  const { store, clock, settings, bus, tuf } = deps;
  const now = clock.now();
  const key = parseDeviceKey(req.publicKey);
  checkProof(req, key, now, settings.enrollSkewMs);
  const spki = key.export({ format: 'der', type: 'spki' });
  const fingerprint = createHash('sha256').update(spki).digest('hex');
  const tokenHash = hashSecret(req.token);
  const mqttPassword = newSecret('pmq');
  const deviceToken = newSecret('pdt');

  const deviceId = await store.durable(async (tx) => {
    const token = await tx
      .selectFrom('enroll_tokens')
      .selectAll()
      .where('hash', '=', tokenHash)
      .executeTakeFirst();
    if (!token || token.revoked_at !== null)
      throw new PerchError('E_ENROLL_TOKEN_INVALID', 'unknown or revoked enrollment token');
    if (token.expires_at <= now)
      throw new PerchError('E_ENROLL_TOKEN_EXPIRED', 'enrollment token has expired');
    const taken = await tx
      .updateTable('enroll_tokens')
      .set((eb) => ({ uses: eb('uses', '+', 1) }))
      .where('id', '=', token.id)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .whereRef('uses', '<', 'max_uses')
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) !== 1)
      throw new PerchError('E_ENROLL_TOKEN_EXHAUSTED', 'enrollment token has no uses left');

    const existing = await tx
      .selectFrom('devices')
      .select('id')
      .where('key_fingerprint', '=', fingerprint)
      .executeTakeFirst();
    if (existing) throw new PerchError('E_ENROLL_KEY_REUSED', 'this public key already belongs to a device');

    let id = req.name !== undefined && isValidId(req.name) ? req.name : undefined;
    if (id !== undefined) {
      const clash = await tx.selectFrom('devices').select('id').where('id', '=', id).executeTakeFirst();
      if (clash) id = undefined;
    }
    id ??= `dev-${randomBytes(6).toString('hex')}`;

    await tx
      .insertInto('devices')
      .values({
        id,
        public_key: spki.toString('base64'),
        key_fingerprint: fingerprint,
        mqtt_password_hash: hashSecret(mqttPassword),
        device_token_hash: hashSecret(deviceToken),
        hostname: req.hostname ?? null,
        enroll_token_id: token.id,
        enrolled_at: now,
        revoked_at: null,
        last_seen_at: null,
        online: 0,
        reported: null,
        reported_at: null,
      })
      .execute();
    const tags = JSON.parse(token.tags) as string[];
    if (tags.length > 0) {
      await tx
        .insertInto('device_tags')
        .values(tags.map((tag) => ({ device_id: id, tag })))
        .execute();
    }
    await audit(tx, now, {
      actor: `enroll-token:${token.id}`,
      action: 'device.enroll',
      target: id,
      details: { fingerprint },
    });
    // Inside the transaction: if the broker cannot take the credentials, nothing is enrolled and the use is kept.
    await bus.addDevice(id, mqttPassword);
    return id;
  });

  return {
    deviceId,
    mqtt: {
      url: settings.mqttUrl,
      username: deviceId,
      password: mqttPassword,
      clientId: deviceId,
      topicPrefix: settings.topicPrefix,
    },
    tufRoot: await tuf.trustedRoot(),
    controllerUrl: settings.publicUrl,
    deviceToken,
  };
}
