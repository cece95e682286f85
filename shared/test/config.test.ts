import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { loadConfig, PerchError } from '@perch/shared';

const schema = z.strictObject({
  home: z.string(),
  http: z.strictObject({ host: z.string(), port: z.number().int().min(1).max(65535) }),
  mqtt: z.strictObject({ mode: z.enum(['embedded', 'external']), url: z.string().optional() }),
  debug: z.boolean(),
});
const defaults = {
  home: './.perch',
  http: { host: '127.0.0.1', port: 8080 },
  mqtt: { mode: 'embedded' },
  debug: false,
};
const envMap = {
  PERCH_HOME: 'home',
  PERCH_HTTP_PORT: 'http.port',
  PERCH_MQTT_MODE: 'mqtt.mode',
  PERCH_DEBUG: 'debug',
};

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): PerchError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PerchError) return err;
    throw err;
  }
  throw new Error('expected a PerchError');
}

describe('loadConfig', () => {
  it('uses the defaults when nothing else is given', () => {
    expect(loadConfig({ schema, defaults, env: {} })).toEqual(defaults);
  });

  it('applies file < environment < flags, in that order', () => {
    const file = write('c.yaml', 'home: /from-file\nhttp:\n  port: 9000\n  host: 0.0.0.0\n');
    const cfg = loadConfig({
      schema,
      defaults,
      file,
      env: { PERCH_HTTP_PORT: '9100', PERCH_HOME: '/from-env' },
      envMap,
      flags: { home: '/from-flag', debug: undefined },
    });
    expect(cfg).toEqual({
      home: '/from-flag',
      http: { host: '0.0.0.0', port: 9100 },
      mqtt: { mode: 'embedded' },
      debug: false,
    });
  });

  it('reads JSON files too', () => {
    const file = write('c.json', JSON.stringify({ debug: true }));
    expect(loadConfig({ schema, defaults, file, env: {} }).debug).toBe(true);
  });

  it('freezes the result deeply', () => {
    const cfg = loadConfig({ schema, defaults, env: {} });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.http)).toBe(true);
    expect(() => {
      (cfg.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reports every error at once with its path and origin', () => {
    const file = write('c.yaml', 'http:\n  port: 70000\nunknownKey: 1\n');
    const err = configError(() =>
      loadConfig({
        schema,
        defaults,
        file,
        env: { PERCH_MQTT_MODE: 'carrier-pigeon', PERCH_DEBUG: 'yes' },
        envMap,
      }),
    );
    expect(err.code).toBe('E_CONFIG_INVALID');
    const issues = (err.details as { issues: Array<{ path: string; source: string }> }).issues;
    const paths = issues.map((i) => i.path).sort();
    expect(paths).toEqual(['(root)', 'debug', 'http.port', 'mqtt.mode']);
    expect(err.message).toContain('env PERCH_MQTT_MODE');
    expect(issues.find((i) => i.path === 'http.port')?.source).toBe('file');
  });

  it('refuses an unreadable, malformed or hostile file with E_CONFIG_FILE', () => {
    expect(
      configError(() =>
        loadConfig({ schema, defaults, file: path.join(dir, 'missing.yaml'), fileRequired: true }),
      ).code,
    ).toBe('E_CONFIG_FILE');
    const bad = write('bad.yaml', 'http: [unclosed\n');
    expect(configError(() => loadConfig({ schema, defaults, file: bad })).code).toBe('E_CONFIG_FILE');
    const proto = write('proto.json', '{"__proto__": {"home": "x"}}');
    expect(configError(() => loadConfig({ schema, defaults, file: proto })).code).toBe('E_CONFIG_FILE');
    const yamlProto = write('proto.yaml', '__proto__:\n  polluted: 1\n');
    expect(configError(() => loadConfig({ schema, defaults, file: yamlProto })).code).toBe('E_CONFIG_FILE');
    const list = write('list.yaml', '- a\n- b\n');
    expect(configError(() => loadConfig({ schema, defaults, file: list })).code).toBe('E_CONFIG_FILE');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('ignores a missing optional file', () => {
    expect(loadConfig({ schema, defaults, file: path.join(dir, 'none.yaml'), env: {} })).toEqual(defaults);
  });
});
