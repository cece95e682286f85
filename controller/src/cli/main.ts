#!/usr/bin/env node
import { Command } from 'commander';
import { isPerchError, PerchError, systemClock } from '@perch/shared';
import { controllerPaths, loadControllerConfig, type ControllerConfig } from '../config';
import { initController } from '../controller';
import { serve } from '../server';
import { TufRepository, type RotatableRole } from '../tuf/repository';

function config(opts: {
  config?: string;
  home?: string;
  port?: string;
  mqttPort?: string;
}): ControllerConfig {
  return loadControllerConfig({
    ...(opts.config ? { file: opts.config } : {}),
    flags: {
      home: opts.home,
      'http.port': opts.port === undefined ? undefined : Number(opts.port),
      'mqtt.port': opts.mqttPort === undefined ? undefined : Number(opts.mqttPort),
    },
  });
}

function fail(err: unknown): never {
  if (isPerchError(err)) console.error(`${err.code}: ${err.message}`);
  else console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}

const program = new Command('perch-controller').description('Perch fleet controller');
const common = (c: Command) =>
  c
    .option('-c, --config <file>', 'config file (JSON or YAML)')
    .option('--home <dir>', 'data folder (PERCH_HOME)')
    .option('-p, --port <port>', 'HTTP port (PERCH_HTTP_PORT)')
    .option('--mqtt-port <port>', 'embedded MQTT broker port (PERCH_MQTT_PORT)');

common(program.command('serve', { isDefault: true }).description('run the controller (default)')).action(
  async (opts) => {
    try {
      const running = await serve(config(opts as Record<string, string>));
      if (running.adminToken)
        console.error(
          `admin token (shown once, also in the data folder admin-token file): ${running.adminToken}`,
        );
      console.error(
        `perch-controller listening on ${running.url}${running.mqttPort ? `, MQTT on ${running.mqttPort}` : ''}`,
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        console.error(`${signal}: stopping`);
        running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    } catch (err) {
      fail(err);
    }
  },
);

common(
  program.command('init').description('create the data folder, database, TUF keys and the first admin token'),
).action(async (opts) => {
  try {
    const cfg = config(opts as Record<string, string>);
    const { adminToken, paths } = await initController(cfg);
    if (adminToken) console.log(adminToken);
    else console.error(`already initialised: ${paths.root} (admin token not shown again)`);
  } catch (err) {
    fail(err);
  }
});

const ROTATABLE: readonly RotatableRole[] = ['timestamp', 'snapshot', 'targets'];

common(
  program
    .command('rotate-keys')
    .description(
      'replace TUF online keys through a new root signed by the root key; devices follow it on their next refresh',
    )
    .requiredOption('--role <role...>', `roles whose key to replace: ${ROTATABLE.join(', ')}`),
).action(async (opts: { role: string[]; config?: string; home?: string }) => {
  try {
    const roles = opts.role.map((r) => {
      if (!(ROTATABLE as readonly string[]).includes(r))
        throw new PerchError('E_TUF_KEYS', `cannot rotate role ${r}: one of ${ROTATABLE.join(', ')}`);
      return r as RotatableRole;
    });
    const tuf = new TufRepository(controllerPaths(config(opts).home).tuf, systemClock);
    await tuf.open();
    const ids = await tuf.rotateKeys(roles);
    for (const [role, id] of Object.entries(ids)) console.log(`${role} ${id}`);
    console.error(`root version ${tuf.versions().root} published`);
  } catch (err) {
    fail(err);
  }
});

program.parseAsync(process.argv).catch(fail);
