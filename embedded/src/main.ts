#!/usr/bin/env node
import path from 'node:path';
import { isPerchError } from '@perch/shared';
import { startEmbedded, type RunningEmbedded } from './launcher';

/* eslint-disable no-console -- this is the program a person runs with `npm start`. */

const ROOT = path.resolve(__dirname, '..', '..');

async function waitForFirstEvent(running: RunningEmbedded, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  while (!signal.aborted) {
    try {
      const res = await fetch(`${running.apiUrl}/api/v1/events?limit=1`, {
        headers: { authorization: `Bearer ${running.adminToken}` },
      });
      const body = (await res.json()) as { events?: Array<{ label: string; score: number; phase: string }> };
      const e = body.events?.[0];
      if (e) {
        console.log(
          `first event after ${Math.round((Date.now() - started) / 1000)} s: ${e.phase} ${e.label} (score ${e.score.toFixed(2)})`,
        );
        return;
      }
    } catch {
      // the controller is stopping
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function main(): Promise<void> {
  console.log('Perch: starting the embedded setup (controller, broker, one agent, demo pipeline) ...');
  // Signals are handled from the start: a Ctrl-C or SIGTERM during startup must stop the agent child
  // too, not leave it running without its controller.
  const ac = new AbortController();
  let running: RunningEmbedded | undefined;
  let stopping = false;
  const stopAndExit = (r: RunningEmbedded) =>
    r.stop().then(
      () => {
        console.log('stopped.');
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`error while stopping: ${String(err)}`);
        process.exit(1);
      },
    );
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    ac.abort();
    console.log(`\n${signal}: stopping ...`);
    const hard = setTimeout(() => process.exit(1), 30_000);
    hard.unref();
    // While starting, startEmbedded sees the abort, stops what it started and rejects (below).
    if (running) void stopAndExit(running);
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    running = await startEmbedded({ root: ROOT, say: (l) => console.log(`  ${l}`), signal: ac.signal });
  } catch (err) {
    if (stopping) {
      console.log('stopped.');
      process.exit(0);
    }
    console.error(
      isPerchError(err) ? `error ${err.code}: ${err.message}` : `error: ${(err as Error).message}`,
    );
    process.exit(1);
  }
  if (stopping) {
    await stopAndExit(running);
    return;
  }
  const q = (s: string) => (s.includes(' ') ? `'${s}'` : s);
  console.log(`
Perch is up.
  API            ${running.apiUrl}/api/v1   (OpenAPI: ${running.apiUrl}/api/v1/openapi.json)
  MQTT broker    ${running.mqttUrl}
  admin token    ${running.adminTokenFile}
  device         ${running.deviceId}   (agent log: ${running.agentLog})
  state          ${running.home}   (a second npm start reuses it)

Follow events:
  curl -s -H "Authorization: Bearer $(cat ${q(running.adminTokenFile)})" ${running.apiUrl}/api/v1/events
  node controller/dist/perchctl/main.js --url ${running.apiUrl} --token "$(cat ${q(running.adminTokenFile)})" events tail

Ctrl-C stops everything.`);

  await waitForFirstEvent(running, ac.signal);
}

void main();
