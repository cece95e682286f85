import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@perch/shared';
import { controllerConfigSchema, controllerPaths, loadControllerConfig } from '../src/config';
import { initController } from '../src/controller';

describe('controller config', () => {
  it('takes defaults, then PERCH_* environment, then flags', () => {
    const cfg = loadControllerConfig({
      env: { PERCH_HOME: '/tmp/x', PERCH_HTTP_PORT: '9000', PERCH_MQTT_PORT: '1999' },
      flags: { 'http.port': 9100 },
    });
    expect(cfg.home).toBe('/tmp/x');
    expect(cfg.http.port).toBe(9100);
    expect(cfg.mqtt).toMatchObject({ mode: 'embedded', port: 1999 });
    expect(cfg.topicPrefix).toBe('perch');
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('keeps events 90 days and the audit log 365 by default, and refuses horizons outside 1-3650 days', () => {
    expect(controllerConfigSchema.parse({ home: '/tmp/x' }).retention).toMatchObject({
      telemetryDays: 30,
      eventsDays: 90,
      auditDays: 365,
    });
    expect(
      controllerConfigSchema.parse({ home: '/tmp/x', retention: { eventsDays: 7, auditDays: 3650 } })
        .retention,
    ).toMatchObject({ eventsDays: 7, auditDays: 3650 });
    for (const bad of [{ eventsDays: 0 }, { eventsDays: 3651 }, { auditDays: 0 }, { auditDays: 1.5 }])
      expect(controllerConfigSchema.safeParse({ home: '/tmp/x', retention: bad }).success).toBe(false);
  });

  it('needs only the data folder when parsed directly (sections default to {})', () => {
    const c = controllerConfigSchema.parse({ home: '/tmp/x' });
    expect(c.http.port).toBe(8080);
    expect(c.mqtt.mode).toBe('embedded');
    expect(c.limits.bodyBytes).toBe(1024 * 1024);
  });

  it('lists every invalid value at once, including external mode without credentials', () => {
    expect(() =>
      loadControllerConfig({ env: { PERCH_HTTP_PORT: '99999', PERCH_MQTT_MODE: 'external' } }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_CONFIG_INVALID',
        message: expect.stringMatching(/http\.port[\s\S]*mqtt\.url/),
      }),
    );
  });
});

describe('controller init', () => {
  it('creates the data folder, an admin token file readable only by its owner, and is idempotent', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-init-'));
    try {
      const cfg = loadControllerConfig({ env: { PERCH_HOME: home } });
      const logger = createLogger({ namespace: 'test', silent: true });
      const first = await initController(cfg, { logger });
      expect(first.adminToken).toMatch(/^pat_/);
      const paths = controllerPaths(home);
      expect(fs.readFileSync(paths.adminToken, 'utf8').trim()).toBe(first.adminToken);
      expect(fs.statSync(paths.adminToken).mode & 0o777).toBe(0o600);
      const second = await initController(cfg, { logger });
      expect(second.adminToken).toBeUndefined();
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
