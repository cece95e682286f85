#!/usr/bin/env node
import { Command } from 'commander';
import { isPerchError } from '@perch/shared';
import { startAgent, type Agent } from '../agent';
import { loadAgentConfig } from '../core/config';
import { createPipelineHost } from '../pipeline/host';

/** Start failures that only a configuration change fixes. */
const CONFIG_CODES = new Set(['E_CONFIG_INVALID', 'E_AGENT_NOT_ENROLLED']);

/**
 * `perch-agent`: loads the configuration (flags > PERCH_* environment > file > defaults), starts the
 * agent, and on SIGTERM/SIGINT stops it gracefully within the configured timeout and exits 0.
 */
async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('perch-agent')
    .description('Perch edge agent: enrolls, reconciles models and pipelines, publishes telemetry')
    .option('-c, --config <file>', 'configuration file (JSON or YAML)', process.env.PERCH_AGENT_CONFIG)
    .option('--state-dir <dir>', 'state folder (default /var/lib/perch-agent, or PERCH_STATE_DIR)')
    .option('--controller-url <url>', 'controller URL for enrollment')
    .option('--enroll-token <token>', 'enrollment token (prefer PERCH_ENROLL_TOKEN)')
    .option('--log-level <level>', 'error | warn | info | debug')
    .parse(argv);
  const opts = program.opts<{
    config?: string;
    stateDir?: string;
    controllerUrl?: string;
    enrollToken?: string;
    logLevel?: string;
  }>();
  let config;
  try {
    config = loadAgentConfig({
      file: opts.config,
      flags: {
        stateDir: opts.stateDir,
        controllerUrl: opts.controllerUrl,
        enrollToken: opts.enrollToken,
        logLevel: opts.logLevel,
      },
    });
  } catch (err) {
    console.error(isPerchError(err) ? `${err.code}: ${err.message}` : String(err));
    process.exit(2);
  }
  let agent: Agent | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const hard = setTimeout(() => process.exit(0), config.shutdownTimeoutMs + 2000);
    hard.unref();
    void (agent ? agent.stop(signal === 'SIGTERM' ? 'stopped' : signal) : Promise.resolve()).finally(() =>
      process.exit(0),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (reason) => {
    // Every promise should be handled; if one is not, log it rather than die (counted as E_INTERNAL).
    agent?.counters.error('E_INTERNAL');
    agent?.logger.error('unhandled rejection', { code: 'E_INTERNAL', err: String(reason) });
  });
  try {
    agent = await startAgent(config, {
      // The real pipelines (agent/src/pipeline) behind the core's PipelineHost port; deps carry the
      // agent's logger. No MQTT client: a sensor-mqtt source connects to the broker of its own config,
      // since the device login may not subscribe outside its desired state and commands (README).
      pipelineHost: (deps) => createPipelineHost(deps),
    });
    if (stopping) await agent.stop();
  } catch (err) {
    if (stopping) return;
    console.error(isPerchError(err) ? `${err.code}: ${err.message}` : String(err));
    // 2: the configuration cannot work as it is (like an invalid file above); 1: anything else.
    process.exit(isPerchError(err) && CONFIG_CODES.has(err.code) ? 2 : 1);
  }
}

void main(process.argv);
