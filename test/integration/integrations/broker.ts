import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestMosquitto } from '../../helpers/mosquitto';

/** The production config shipped in deploy/mosquitto, which these tests start Mosquitto with. */
export const SHIPPED_CONFIG = path.resolve(__dirname, '../../../deploy/mosquitto/mosquitto.conf');

export interface PerchBroker {
  broker: TestMosquitto;
  /** The dynamic-security admin client created by `mosquitto_ctrl dynsec init`, as in the README. */
  admin: { username: string; password: string };
  /** Folder holding the dynamic-security file and the generated template. */
  stateDir: string;
  close(): Promise<void>;
}

function replaceOnce(config: string, from: RegExp, to: string): string {
  const matches = config.match(new RegExp(from.source, 'gm'));
  if (!matches || matches.length !== 1) {
    throw new Error(
      `shipped mosquitto.conf: expected exactly one line matching ${from}, found ${matches?.length ?? 0}`,
    );
  }
  return config.replace(new RegExp(from.source, 'm'), to);
}

/**
 * Turns the shipped config into a TestMosquitto template. Only the lines marked `[test]` in the
 * file change (port, state paths); each must match exactly once so drift fails loudly.
 */
export function testTemplateFromShipped(dynsecFile: string, options: { persistence?: boolean } = {}): string {
  let config = fs.readFileSync(SHIPPED_CONFIG, 'utf8');
  config = replaceOnce(config, /^listener 1883 127\.0\.0\.1$/, 'listener {{PORT}} 127.0.0.1');
  config = replaceOnce(config, /^plugin_opt_config_file .*$/, `plugin_opt_config_file ${dynsecFile}`);
  config = replaceOnce(config, /^persistence_location .*$/, 'persistence_location {{DIR}}/');
  if (options.persistence === false) config = replaceOnce(config, /^persistence true$/, 'persistence false');
  // As root, mosquitto would switch to its own user and lose access to the private folders.
  if (process.getuid?.() === 0) config = `user root\n${config}`;
  return config;
}

/** Starts Mosquitto from the shipped config with a freshly bootstrapped dynamic-security admin. */
export async function startPerchBroker(options: { persistence?: boolean } = {}): Promise<PerchBroker> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-dynsec-'));
  const admin = { username: 'perch-admin', password: `admin-${process.pid}-${Date.now()}` };
  const dynsecFile = path.join(stateDir, 'dynamic-security.json');
  execFileSync('mosquitto_ctrl', ['dynsec', 'init', dynsecFile, admin.username, admin.password], {
    stdio: 'ignore',
  });
  const template = path.join(stateDir, 'mosquitto.conf.tmpl');
  fs.writeFileSync(template, testTemplateFromShipped(dynsecFile, options));
  const broker = await TestMosquitto.start({ configTemplate: template });
  return {
    broker,
    admin,
    stateDir,
    close: async () => {
      await broker.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
