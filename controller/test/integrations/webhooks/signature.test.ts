import { createHmac } from 'node:crypto';
import { retryDelay, signWebhook, verifyWebhook } from '../../../src/integrations/webhooks';

const SECRET = 'whsec_0123456789abcdef0123456789abcdef';
const NOW = Date.UTC(2026, 0, 1, 12);
const body = '{"id":"whd-1","type":"perch.event"}';

describe('webhook signatures', () => {
  it('signs t and the raw body with HMAC-SHA256 in the t=...,v1=... form', () => {
    const header = signWebhook(SECRET, body, NOW);
    const t = NOW / 1000;
    const expected = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
    expect(header).toBe(`t=${t},v1=${expected}`);
    expect(verifyWebhook(SECRET, header, body, { nowMs: NOW })).toBe(t);
  });

  it('refuses a changed body, another secret, a missing or malformed header', () => {
    const header = signWebhook(SECRET, body, NOW);
    const refuse = (s: string, h: string | undefined, b: string) =>
      expect(() => verifyWebhook(s, h, b, { nowMs: NOW })).toThrow(
        expect.objectContaining({ code: 'E_WEBHOOK_SIGNATURE' }),
      );
    refuse(SECRET, header, body.replace('1', '2'));
    refuse(`${SECRET}x`, header, body);
    refuse(SECRET, undefined, body);
    refuse(SECRET, 'v1=abc', body);
    refuse(SECRET, header.replace(/v1=.*/, 'v1=zz'), body);
  });

  it('refuses signatures older (or newer) than the tolerance, to stop replays', () => {
    const header = signWebhook(SECRET, body, NOW);
    expect(() => verifyWebhook(SECRET, header, body, { nowMs: NOW + 301_000 })).toThrow(/300 s/);
    expect(() => verifyWebhook(SECRET, header, body, { nowMs: NOW - 301_000 })).toThrow(/300 s/);
    expect(verifyWebhook(SECRET, header, body, { nowMs: NOW + 299_000 })).toBe(NOW / 1000);
  });

  it('accepts any matching v1 among several (secret rotation)', () => {
    const old = signWebhook('another-secret-another-secret-00000', body, NOW);
    const header = `${old},${signWebhook(SECRET, body, NOW).split(',')[1]}`;
    expect(verifyWebhook(SECRET, header, body, { nowMs: NOW })).toBe(NOW / 1000);
  });
});

describe('retry backoff', () => {
  it('grows exponentially, is capped, and jitters within the upper half', () => {
    const opts = { baseMs: 1000, maxMs: 60_000 };
    expect([1, 2, 3, 4].map((n) => retryDelay(n, opts, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    expect([1, 2, 3].map((n) => retryDelay(n, opts, () => 0))).toEqual([500, 1000, 2000]);
    expect(retryDelay(30, opts, () => 1)).toBe(60_000);
  });
});
