import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Secrets carry a short prefix so that a leaked one is recognisable (`pat_` api, `pet_` enroll, `pdt_` device). */
export function newSecret(prefix: 'pat' | 'pet' | 'pdt' | 'pmq'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** 256-bit random secrets need no salt or slow hash: sha256 is enough to keep the store useless to a thief. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}
