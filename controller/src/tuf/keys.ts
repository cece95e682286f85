import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Key, Signature } from '@tufjs/models';
import { PerchError } from '@perch/shared';

export const ROLE_NAMES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export interface RoleKey {
  key: Key;
  privateKey: KeyObject;
}

function rawPublicHex(pub: KeyObject): string {
  // An Ed25519 SPKI DER is a 12-byte prefix plus the 32-byte raw key.
  const der = pub.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('hex');
}

/** Key id = sha256 of the key's canonical JSON (keys sorted, no spaces), as the TUF spec says. */
export function tufKey(pub: KeyObject): Key {
  const hex = rawPublicHex(pub);
  const canonical = `{"keytype":"ed25519","keyval":{"public":"${hex}"},"scheme":"ed25519"}`;
  const keyID = createHash('sha256').update(canonical).digest('hex');
  return new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal: { public: hex } });
}

export function signerFor(rk: RoleKey): (data: Buffer) => Signature {
  return (data) =>
    new Signature({ keyID: rk.key.keyID, sig: sign(null, data, rk.privateKey).toString('hex') });
}

/** Loads `<dir>/<role>.pem` for every role, creating missing ones (mode 0600) when `create` is set. */
export async function loadRoleKeys(dir: string, create: boolean): Promise<Record<RoleName, RoleKey>> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const out = {} as Record<RoleName, RoleKey>;
  for (const role of ROLE_NAMES) {
    const file = path.join(dir, `${role}.pem`);
    let pem: string;
    try {
      pem = await fs.readFile(file, 'utf8');
    } catch {
      if (!create) throw new PerchError('E_TUF_KEYS', `TUF ${role} key ${file} is missing`);
      const { privateKey } = generateKeyPairSync('ed25519');
      pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      await fs.writeFile(file, pem, { mode: 0o600, flag: 'wx' });
    }
    out[role] = roleKeyFromPem(pem, file);
  }
  return out;
}

export function roleKeyFromPem(pem: string, file: string): RoleKey {
  try {
    const privateKey = createPrivateKey(pem);
    return { privateKey, key: tufKey(createPublicKey(privateKey)) };
  } catch (err) {
    throw new PerchError('E_TUF_KEYS', `TUF key ${file} is unreadable`, undefined, { cause: err });
  }
}

/** Where a new key waits until the root that trusts it is written (see `TufRepository.rotateKeys`). */
export const nextKeyFile = (dir: string, role: RoleName) => path.join(dir, `${role}.pem.next`);

/** Makes a new Ed25519 key and writes it (0600, fsynced) to `file`, replacing a leftover one. */
export async function writeNewKey(file: string): Promise<RoleKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  await fs.rm(file, { force: true });
  const fh = await fs.open(file, 'wx', 0o600);
  try {
    await fh.writeFile(pem);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return roleKeyFromPem(pem, file);
}
