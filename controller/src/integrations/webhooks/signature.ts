import { createHmac, timingSafeEqual } from 'node:crypto';
import { PerchError } from '@perch/shared';

/**
 * Webhook signatures, in the scheme Stripe made familiar:
 *
 *   Perch-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
 *
 * `t` is the Unix time in seconds when the attempt was sent; `v1` is the lowercase hex
 * HMAC-SHA256, keyed with the subscription secret, of `${t}.${rawBody}`. Receivers recompute it over
 * the raw body bytes, compare in constant time, and refuse timestamps older than a tolerance (5
 * minutes) to stop replays. Several `v1` entries may appear (during a secret rotation); one match
 * is enough.
 */
export const SIGNATURE_HEADER = 'perch-signature';
export const WEBHOOK_ID_HEADER = 'perch-webhook-id';
export const DEFAULT_TOLERANCE_S = 300;

function hmac(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The header value for one delivery attempt. */
export function signWebhook(secret: string, body: string | Buffer, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${hmac(secret, t, body)}`;
}

/**
 * Checks a signature header against the raw body. Throws E_WEBHOOK_SIGNATURE (missing, malformed,
 * outside the tolerance, or no matching v1); returns the signed timestamp (seconds) otherwise.
 */
export function verifyWebhook(
  secret: string,
  header: string | undefined,
  body: string | Buffer,
  options: { nowMs?: number; toleranceS?: number } = {},
): number {
  if (!header) throw new PerchError('E_WEBHOOK_SIGNATURE', 'no Perch-Signature header');
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) v1.push(value);
  }
  if (t === undefined || v1.length === 0) {
    throw new PerchError('E_WEBHOOK_SIGNATURE', 'Perch-Signature needs t=<seconds> and v1=<hex>');
  }
  const now = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const tolerance = options.toleranceS ?? DEFAULT_TOLERANCE_S;
  if (Math.abs(now - t) > tolerance) {
    throw new PerchError('E_WEBHOOK_SIGNATURE', `signature timestamp is more than ${tolerance} s away`);
  }
  const expected = Buffer.from(hmac(secret, t, body), 'hex');
  const match = v1.some((candidate) => timingSafeEqual(Buffer.from(candidate, 'hex'), expected));
  if (!match) throw new PerchError('E_WEBHOOK_SIGNATURE', 'signature does not match the body');
  return t;
}
