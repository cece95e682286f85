import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPerchError, systemClock } from '@perch/shared';
import { Counters } from '../../src/core/counters';
import { ensureEnrolled } from '../../src/core/identity/enroll';
import { saveCredentials, type Credentials } from '../../src/core/identity/credentials';
import { silentLogger } from './helpers';

describe('ensureEnrolled: what a not-yet-enrolled agent needs', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-enroll-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const options = (controllerUrl: string, token: string | undefined, fetchFn: typeof fetch) => ({
    controllerUrl,
    ...(token !== undefined ? { token } : {}),
    keyFile: path.join(dir, 'identity.key'),
    credentialsFile: path.join(dir, 'credentials.json'),
    tufDir: path.join(dir, 'tuf'),
    enrolledRootFile: path.join(dir, 'tuf', 'enrolled-root.json'),
    clock: systemClock,
    logger: silentLogger(),
    counters: new Counters(),
    fetchFn,
    retryBaseMs: 1,
    retryCapMs: 1,
  });

  async function failure(p: Promise<unknown>) {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isPerchError(err)) throw new Error(`expected a PerchError, got ${String(err)}`);
    return { code: err.code, missing: (err.details as { missing?: string[] } | undefined)?.missing };
  }

  it.each([
    ['', 'pet_token', ['controllerUrl']],
    ['http://127.0.0.1:9', undefined, ['enrollToken']],
    ['', undefined, ['controllerUrl', 'enrollToken']],
  ])(
    'controllerUrl %j, token %j: E_AGENT_NOT_ENROLLED naming %j, no request',
    async (url, token, missing) => {
      const fetchFn = jest.fn<Promise<Response>, Parameters<typeof fetch>>();
      await expect(failure(ensureEnrolled(options(url, token, fetchFn)))).resolves.toEqual({
        code: 'E_AGENT_NOT_ENROLLED',
        missing,
      });
      expect(fetchFn).not.toHaveBeenCalled();
    },
  );

  it('an enrolled agent needs neither the controller URL nor a token', async () => {
    const creds: Credentials = {
      deviceId: 'dev-1',
      controllerUrl: 'http://controller.local',
      deviceToken: 'pdt_x',
      mqtt: { url: 'mqtt://b', username: 'dev-1', password: 'p', clientId: 'dev-1', topicPrefix: 'perch' },
    };
    saveCredentials(path.join(dir, 'credentials.json'), creds);
    const fetchFn = jest.fn<Promise<Response>, Parameters<typeof fetch>>();
    await expect(ensureEnrolled(options('', undefined, fetchFn))).resolves.toEqual(creds);
    expect(fetchFn).not.toHaveBeenCalled();
  });
});
