import os from 'node:os';
import { PerchError, safeJsonParse, type Clock, type Logger } from '@perch/shared';
import { Backoff } from '../backoff';
import type { Counters } from '../counters';
import { TufClient } from '../tuf-client';
import { loadCredentials, parseCredentials, saveCredentials, type Credentials } from './credentials';
import { loadOrCreateKey, signEnrollment } from './keys';

export interface EnrollOptions {
  controllerUrl: string;
  token: string;
  /** Requested device id (the controller may pick another). */
  name?: string;
  keyFile: string;
  credentialsFile: string;
  tufDir: string;
  enrolledRootFile: string;
  clock: Clock;
  logger: Logger;
  counters: Counters;
  fetchFn?: typeof fetch;
  signal?: AbortSignal;
  retryBaseMs?: number;
  retryCapMs?: number;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** One enrollment attempt. Refusals (4xx) are E_AGENT_ENROLL_REFUSED; anything else E_AGENT_ENROLL_FAILED. */
export async function enrollOnce(
  options: EnrollOptions,
): Promise<{ credentials: Credentials; tufRoot: unknown }> {
  const key = loadOrCreateKey(options.keyFile);
  const timestamp = new Date(options.clock.now()).toISOString();
  const body = {
    token: options.token,
    publicKey: key.publicKeyPem,
    timestamp,
    proof: signEnrollment(key, options.token, timestamp),
    hostname: os.hostname().slice(0, 255),
    ...(options.name ? { name: options.name } : {}),
  };
  const url = `${options.controllerUrl.replace(/\/+$/, '')}/api/v1/enroll`;
  let response: Response;
  try {
    response = await (options.fetchFn ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new PerchError('E_AGENT_ENROLL_FAILED', `cannot reach ${url}: ${String(err)}`);
  }
  const text = await response.text();
  const parsed = safeJsonParse(text, { maxBytes: MAX_RESPONSE_BYTES });
  if (response.status >= 400 && response.status < 500) {
    const error = parsed.ok
      ? (parsed.value as { error?: { code?: string; message?: string } }).error
      : undefined;
    throw new PerchError('E_AGENT_ENROLL_REFUSED', `enrollment refused: ${error?.code ?? response.status}`, {
      status: response.status,
      controllerCode: error?.code,
      message: error?.message,
    });
  }
  if (response.status !== 201 && response.status !== 200) {
    throw new PerchError('E_AGENT_ENROLL_FAILED', `enrollment answered HTTP ${response.status}`);
  }
  if (!parsed.ok)
    throw new PerchError('E_AGENT_ENROLL_FAILED', `enrollment response: ${parsed.error.message}`);
  const credentials = parseCredentials(parsed.value, 'E_AGENT_ENROLL_FAILED');
  const tufRoot = (parsed.value as { tufRoot?: unknown }).tufRoot;
  const signed = (tufRoot as { signed?: { _type?: unknown } } | undefined)?.signed;
  if (!signed || signed._type !== 'root') {
    throw new PerchError('E_AGENT_ENROLL_FAILED', 'enrollment response lacks a TUF root');
  }
  return { credentials, tufRoot };
}

/**
 * Returns stored credentials, or enrolls (retrying transient failures with jittered backoff) and stores
 * them with the pinned TUF root. The root is written before the credentials, so credentials on disk
 * always mean "enrolled and root pinned".
 */
export async function ensureEnrolled(
  options: Omit<EnrollOptions, 'token'> & { token?: string },
): Promise<Credentials> {
  const existing = loadCredentials(options.credentialsFile);
  if (existing) return existing;
  // Without both there is nothing to retry: a clear startup error instead of endless E_AGENT_ENROLL_FAILED.
  const missing = [
    ...(options.controllerUrl ? [] : ['controllerUrl (PERCH_CONTROLLER_URL or --controller-url)']),
    ...(options.token ? [] : ['enrollToken (PERCH_ENROLL_TOKEN or --enroll-token)']),
  ];
  if (missing.length > 0 || !options.token) {
    throw new PerchError('E_AGENT_NOT_ENROLLED', `not enrolled and no ${missing.join(' and no ')} is set`, {
      missing: missing.map((m) => m.split(' ')[0]),
    });
  }
  const backoff = new Backoff({
    baseMs: options.retryBaseMs ?? 2000,
    capMs: options.retryCapMs ?? 5 * 60_000,
    minMs: 100,
  });
  for (;;) {
    try {
      const { credentials, tufRoot } = await enrollOnce({ ...options, token: options.token });
      TufClient.pinRoot(options.tufDir, options.enrolledRootFile, tufRoot);
      saveCredentials(options.credentialsFile, credentials);
      options.logger.info('enrolled', { deviceId: credentials.deviceId });
      return credentials;
    } catch (err) {
      const code = err instanceof PerchError ? err.code : 'E_AGENT_ENROLL_FAILED';
      options.counters.error(code);
      if (code === 'E_AGENT_ENROLL_REFUSED') throw err;
      const delay = backoff.next();
      options.logger.warn('enrollment failed; retrying', { code, err: String(err), delayMs: delay });
      await options.clock.sleep(delay, options.signal);
    }
  }
}
