import '../../../agent/test/pipeline/helpers/ort-realm';
import fs from 'node:fs';
import { Writable } from 'node:stream';
import winston from 'winston';
import { childLogger, type Logger } from '@perch/shared';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Agent } from '../../../agent/src/agent';
import { agentConfigSchema } from '../../../agent/src/core/config';
import { createPipelineHost } from '../../../agent/src/pipeline/host';
import {
  api,
  BLAZEFACE_SPEC,
  createEnrollToken,
  startHarness,
  uploadBundle,
  type Harness,
} from '../controller/harness';

jest.setTimeout(120_000);

interface Line {
  level: string;
  message: string;
  ns?: string;
  [k: string]: unknown;
}

/** The agent's logger as perch-agent makes it, at `level`, writing into `lines`. */
function capturingLogger(level: string, lines: Line[]): Logger {
  const root = winston.createLogger({
    level,
    format: winston.format.json(),
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk: Buffer, _enc, cb) {
            lines.push(JSON.parse(chunk.toString()) as Line);
            cb();
          },
        }),
      }),
    ],
  });
  return childLogger(root, 'agent');
}

/** The agent with the real pipeline host (as perch-agent wires it) against the real controller. */
describe('agent logging and run-time settings', () => {
  let h: Harness;
  let tmp: ReturnType<typeof tempDir>;
  let agent: Agent | undefined;
  beforeAll(async () => {
    h = await startHarness();
    const up = await uploadBundle(h, 'blazeface', '1', {
      model: fs.readFileSync(fixturePath('blazeface.onnx')),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
    });
    expect(up.status).toBe(201);
  });
  beforeEach(() => (tmp = tempDir('perch-agent-log-')));
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    tmp.cleanup();
  });
  afterAll(async () => h?.close());

  let hostLogger: Logger | undefined;

  async function startAgent(lines: Line[], logLevel: 'warn' | 'info') {
    const config = agentConfigSchema.parse({
      stateDir: tmp.dir,
      controllerUrl: h.ctl.url,
      enrollToken: await createEnrollToken(h),
      logLevel,
      telemetry: { intervalS: 3600 },
      update: { warmupRuns: 1, trialRuns: 1 },
      mqtt: { reconnectBaseMs: 100, reconnectCapMs: 1000 },
    });
    agent = new Agent(config, {
      logger: capturingLogger(logLevel, lines),
      env: {},
      pipelineHost: (deps) => {
        hostLogger = deps.logger;
        return createPipelineHost(deps);
      },
    });
    await agent.start();
    await waitFor(() => agent!.session?.connected, { what: 'mqtt connect' });
    return agent;
  }

  const desired = {
    models: [{ name: 'blazeface', version: '1' }],
    // No broker url: the source cannot be built, and the host says so at warn level.
    pipelines: [{ id: 'door', model: 'blazeface', source: { kind: 'sensor-mqtt', topic: 'x/y' } }],
  };

  it("logs the pipelines' warnings through the agent's logger, under its namespace", async () => {
    const lines: Line[] = [];
    const a = await startAgent(lines, 'warn');
    const put = await api(
      h,
      'PUT',
      `/api/v1/devices/${a.credentials!.deviceId}/desired`,
      h.adminToken,
      desired,
    );
    expect(put.status).toBe(200);
    const line = await waitFor(() => lines.find((l) => l.message === 'pipeline source not created'), {
      what: 'the host warning',
      timeoutMs: 60_000,
    });
    expect(line).toMatchObject({
      level: 'warn',
      ns: 'agent:pipelines',
      pipeline: 'door',
      code: 'E_CONFIG_INVALID',
    });
    // The agent's level applies to the pipelines too: nothing below warn from anyone.
    expect(lines.filter((l) => l.level === 'info' || l.level === 'debug')).toEqual([]);
  });

  it("applies the desired state's telemetryIntervalS and logLevel at run time, reports them, and restores its own", async () => {
    const lines: Line[] = [];
    const a = await startAgent(lines, 'info');
    const deviceId = a.credentials!.deviceId;
    const probe = childLogger(hostLogger!, 'pipelines');
    probe.debug('probe at info');
    const reportedConfig = async () => {
      const r = await api<{ reported?: { agent?: { config?: unknown } } }>(
        h,
        'GET',
        `/api/v1/devices/${deviceId}`,
        h.adminToken,
      );
      return JSON.stringify(r.body.reported?.agent?.config);
    };
    const points = async () => {
      const r = await api<{ points?: { count: number }[] }>(
        h,
        'GET',
        `/api/v1/telemetry?device=${deviceId}&metric=agent.uptime_s`,
        h.adminToken,
      );
      return (r.body.points ?? []).reduce((n, p) => n + p.count, 0);
    };
    expect(await points()).toBe(0); // every hour: none yet

    const put = await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
      models: [],
      pipelines: [],
      config: { telemetryIntervalS: 1, logLevel: 'debug' },
    });
    expect(put.status).toBe(200);
    const changed = { telemetryIntervalS: 1, logLevel: 'debug' };
    await waitFor(async () => (await reportedConfig()) === JSON.stringify(changed), {
      what: 'the new settings reported',
    });
    expect(a.runtimeConfig()).toEqual(changed);
    expect(lines).toContainEqual(
      expect.objectContaining({ message: 'runtime config applied', from: 'desired' }),
    );
    // Rescheduled: telemetry arrives now, long before the configured hour.
    await waitFor(async () => (await points()) >= 2, { what: 'telemetry every second' });
    probe.debug('probe at debug');

    const back = await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
      models: [],
      pipelines: [],
    });
    expect(back.status).toBe(200);
    const own = { telemetryIntervalS: 3600, logLevel: 'info' };
    await waitFor(async () => (await reportedConfig()) === JSON.stringify(own), {
      what: 'the own settings reported',
    });
    probe.debug('probe at info again');
    expect(lines.filter((l) => l.message.startsWith('probe')).map((l) => l.message)).toEqual([
      'probe at debug',
    ]);
  });
});
