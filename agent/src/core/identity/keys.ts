import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PerchError } from '@perch/shared';
import { writeFileAtomic } from '../fs-atomic';

export interface DeviceKey {
  privateKey: crypto.KeyObject;
  /** SPKI PEM, exactly as sent to the controller. */
  publicKeyPem: string;
}

/**
 * The device's Ed25519 identity. Generated on first start, stored PEM with mode 0600 in a 0700 folder,
 * never sent anywhere; only the public key leaves the device.
 */
export function loadOrCreateKey(file: string): DeviceKey {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let pem: string | undefined;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem !== undefined) {
    try {
      const privateKey = crypto.createPrivateKey(pem);
      if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
      if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
      return { privateKey, publicKeyPem: publicPem(privateKey) };
    } catch (err) {
      throw new PerchError('E_AGENT_STATE_CORRUPT', `device key ${file} is unreadable: ${String(err)}`);
    }
  }
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  return { privateKey, publicKeyPem: publicPem(privateKey) };
}

function publicPem(privateKey: crypto.KeyObject): string {
  return crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}

/** The challenge of the enrollment contract (controller/README.md). */
export function enrollmentChallenge(token: string, publicKeyPem: string, timestamp: string): Buffer {
  return Buffer.from(['perch-enroll-v1', token, publicKeyPem, timestamp].join('\n'), 'utf8');
}

export function signEnrollment(key: DeviceKey, token: string, timestamp: string): string {
  return crypto
    .sign(null, enrollmentChallenge(token, key.publicKeyPem, timestamp), key.privateKey)
    .toString('base64');
}
