/**
 * The logging a source needs: structurally a subset of the winston logger from `createLogger` in
 * @perch/shared, so the composition root passes a child logger and tests pass `silentLogger`.
 */
export interface SourceLogger {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

const noop = (): void => undefined;
export const silentLogger: SourceLogger = { debug: noop, info: noop, warn: noop, error: noop };
