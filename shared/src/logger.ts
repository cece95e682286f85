import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export type Logger = winston.Logger;

const NS = Symbol('perch.log.namespace');

export interface LoggerOptions {
  level?: LogLevel;
  /** Module namespace, e.g. `agent:outbox`. */
  namespace: string;
  /** Where lines go. Services log to stdout (journald); CLIs keep stdout for output and log to stderr. */
  destination?: 'stdout' | 'stderr';
  /** Extra fields on every line (device id, replica ...). */
  defaultMeta?: Record<string, unknown>;
  /** Silences the logger entirely (tests that check output elsewhere). */
  silent?: boolean;
}

/**
 * The one logger factory: JSON lines with time, level, namespace and message. Pass `childLogger`
 * a sub-namespace for each module instead of creating a second root.
 */
export function createLogger(options: LoggerOptions): Logger {
  const envLevel = process.env.PERCH_LOG_LEVEL as LogLevel | undefined;
  const level = options.level ?? (envLevel && LOG_LEVELS.includes(envLevel) ? envLevel : 'info');
  const toStderr = options.destination === 'stderr';
  const root = winston.createLogger({
    level,
    silent: options.silent ?? process.env.PERCH_LOG_SILENT === '1',
    // Not `ns` here: winston applies defaultMeta last, which would override child namespaces.
    defaultMeta: options.defaultMeta,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    transports: [
      new winston.transports.Console({
        stderrLevels: toStderr ? ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] : [],
      }),
    ],
  });
  const logger = root.child({ ns: options.namespace });
  (logger as Logger & { [NS]?: string })[NS] = options.namespace;
  return logger;
}

/** A child logger whose namespace extends the parent's: `controller` + `http` = `controller:http`. */
export function childLogger(parent: Logger, namespace: string, meta: Record<string, unknown> = {}): Logger {
  const parentNs = namespaceOf(parent);
  const ns = parentNs ? `${parentNs}:${namespace}` : namespace;
  const child = parent.child({ ...meta, ns });
  (child as Logger & { [NS]?: string })[NS] = ns;
  return child;
}

/**
 * Changes the level at run time for a logger, its root and every child logger of that root: winston
 * children inherit `level` from the root (their prototype) and the transports filter on the root's.
 */
export function setLogLevel(logger: Logger, level: LogLevel): void {
  let target: object | null = logger;
  while (target && !Object.prototype.hasOwnProperty.call(target, 'level'))
    target = Object.getPrototypeOf(target) as object | null;
  ((target ?? logger) as Logger).level = level;
}

/** The namespace a logger writes under. */
export function namespaceOf(logger: Logger): string | undefined {
  return (
    (logger as Logger & { [NS]?: string })[NS] ?? (logger.defaultMeta as { ns?: string } | undefined)?.ns
  );
}
