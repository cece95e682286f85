import { Writable } from 'node:stream';
import winston from 'winston';
import { childLogger, createLogger, namespaceOf, setLogLevel } from '@perch/shared';

function capture(logger: winston.Logger): string[] {
  const lines: string[] = [];
  // Children share the root's transports through the prototype chain.
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString().trim());
          cb();
        },
      }),
    }),
  );
  return lines;
}

describe('createLogger', () => {
  it('writes JSON lines with level, namespace, time and fields', () => {
    const log = createLogger({ namespace: 'agent', level: 'info' });
    const lines = capture(log);
    log.info('started', { deviceId: 'cam-1' });
    log.debug('hidden at info level');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 'info', message: 'started', ns: 'agent', deviceId: 'cam-1' });
    expect(typeof entry.timestamp).toBe('string');
  });

  it('gives each module a nested namespace', () => {
    const root = createLogger({ namespace: 'controller', level: 'debug' });
    const lines = capture(root);
    const http = childLogger(root, 'http');
    const route = childLogger(http, 'devices', { requestId: 'r1' });
    expect(namespaceOf(route)).toBe('controller:http:devices');
    route.debug('listed');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      ns: 'controller:http:devices',
      requestId: 'r1',
      level: 'debug',
    });
  });

  it('takes its level from config', () => {
    const log = createLogger({ namespace: 'x', level: 'error' });
    const lines = capture(log);
    log.warn('no');
    log.error('yes');
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['yes']);
  });

  it('changes the level at run time for the logger, its parents and its children alike', () => {
    const agent = createLogger({ namespace: 'agent', level: 'info' });
    const lines = capture(agent);
    const pipelines = childLogger(agent, 'pipelines');
    const source = childLogger(pipelines, 'source');
    source.debug('before');
    setLogLevel(pipelines, 'debug');
    source.debug('debug 1');
    agent.debug('debug 2');
    setLogLevel(agent, 'warn');
    pipelines.info('after');
    source.warn('warned');
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual([
      'debug 1',
      'debug 2',
      'warned',
    ]);
  });
});
