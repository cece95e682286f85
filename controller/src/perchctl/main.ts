#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import type { Writable } from 'node:stream';
import { ApiClient } from './client';
import { makeContext, type CommandContext } from './context';
import { CliFailure, EXIT } from './failure';
import { Output } from './output';
import { normaliseUrl, profilePath, readProfile, writeProfile } from './profile';
import type { Runner } from './commands/args';
import { usage } from './commands/args';
import { registerAssign } from './commands/assign';
import { registerAudit } from './commands/audit';
import { registerDevices } from './commands/devices';
import { registerEnrollTokens } from './commands/enroll-tokens';
import { registerEvents } from './commands/events';
import { registerModels } from './commands/models';
import { registerTelemetry } from './commands/telemetry';
import { registerTokens } from './commands/tokens';
import { registerWebhooks } from './commands/webhooks';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
  timeout?: string;
}

/** Builds the command tree. Each command resolves its own context from the global options. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('perchctl');
  program
    .description(
      "Perch's operator command line: tokens, enrollment, devices, models, assignments, events, telemetry",
    )
    .option('--url <url>', 'controller URL (default: from `perchctl login`, or PERCH_URL)')
    .option('--token <token>', 'API token (default: from `perchctl login`, or PERCH_TOKEN)')
    .option('--json', 'machine-readable JSON output')
    .option('--timeout <ms>', 'per-request timeout in milliseconds', '30000')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });

  const context = (): CommandContext => {
    const g = program.opts<GlobalOptions>();
    const timeoutMs = Number(g.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
      throw usage('--timeout must be an integer >= 100 (ms)');
    const out = new Output(io.stdout, io.stderr, g.json === true);
    return makeContext(out, io.env, {
      ...(g.url ? { url: g.url } : {}),
      ...(g.token ? { token: g.token } : {}),
      timeoutMs,
    });
  };
  const run: Runner =
    (fn) =>
    async (...args) =>
      fn(context(), ...args);

  program
    .command('login')
    .description('check and remember --url and --token (stored with mode 0600 in your config folder)')
    .action(
      run(async (ctx: CommandContext) => {
        // The global --url / --token options (accepted anywhere on the line) say what to store.
        const rawUrl = ctx.flags.url ?? ctx.env.PERCH_URL;
        if (!rawUrl) throw usage('give --url <controller URL>, e.g. --url http://127.0.0.1:8080');
        const url = normaliseUrl(rawUrl);
        const token = ctx.flags.token ?? ctx.env.PERCH_TOKEN;
        if (!token) throw usage('give --token <token> (or set PERCH_TOKEN)');
        // Check the pair before storing it, so a typo is caught now rather than at the next command.
        await new ApiClient({ url, token }, ctx.flags.timeoutMs).get('/devices', { limit: 1 });
        const file = writeProfile({ url, token }, ctx.env);
        ctx.out.say(`logged in to ${url}; credentials stored in ${file}`);
        if (ctx.out.json) ctx.out.data({ url, file });
      }),
    );

  program
    .command('whoami')
    .description('show which controller perchctl talks to')
    .action(
      run(async (ctx: CommandContext) => {
        const stored = readProfile(ctx.env);
        const url = ctx.flags.url ?? ctx.env.PERCH_URL ?? stored.url;
        ctx.out.record({ url: url ?? '(not logged in)', loginFile: profilePath(ctx.env) });
      }),
    );

  registerTokens(program, run);
  registerEnrollTokens(program, run);
  registerDevices(program, run);
  registerModels(program, run);
  registerAssign(program, run);
  registerEvents(program, run);
  registerTelemetry(program, run);
  registerWebhooks(program, run);
  registerAudit(program, run);

  // Subcommands report errors through the same configured output and exit override.
  for (const c of program.commands) {
    c.exitOverride()
      .configureOutput(program.configureOutput())
      .showHelpAfterError('(run with --help for usage)');
    for (const sub of c.commands) sub.exitOverride().configureOutput(program.configureOutput());
  }
  return program;
}

/** Runs perchctl and returns its exit code; never throws. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return EXIT.ok;
      if (err.code === 'commander.help') return EXIT.ok;
      // commander has already printed its message.
      return EXIT.usage;
    }
    if (err instanceof CliFailure) {
      io.stderr.write(`error ${err.code}: ${err.message}\n`);
      if (err.hint) io.stderr.write(`hint: ${err.hint}\n`);
      return err.exitCode;
    }
    io.stderr.write(`error E_INTERNAL: ${(err as Error)?.message ?? String(err)}\n`);
    return EXIT.error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
    (code) => {
      process.exitCode = code;
    },
    () => {
      process.exitCode = EXIT.error;
    },
  );
}
