import type { ErrorSpec } from './define';
import { agentErrors } from './codes/agent';
import { cliErrors } from './codes/cli';
import { commonErrors } from './codes/common';
import { controllerErrors } from './codes/controller';
import { integrationsErrors } from './codes/integrations';
import { pipelineErrors } from './codes/pipeline';
import { sourcesErrors } from './codes/sources';

export { defineErrors } from './define';
export type { ErrorSpec, ErrorTable } from './define';

const tables = [
  commonErrors,
  controllerErrors,
  agentErrors,
  pipelineErrors,
  sourcesErrors,
  cliErrors,
  integrationsErrors,
] as const;

type Union<T extends readonly unknown[]> = T[number];
type KeysOf<T> = T extends unknown ? keyof T : never;

/** Every error code Perch can report. */
export type ErrorCode = KeysOf<Union<typeof tables>> & string;

function merge(): Readonly<Record<ErrorCode, ErrorSpec>> {
  const out: Record<string, ErrorSpec> = {};
  for (const table of tables) {
    for (const [code, spec] of Object.entries(table)) {
      if (code in out) throw new Error(`error code ${code} is defined twice`);
      out[code] = Object.freeze({ ...spec });
    }
  }
  return Object.freeze(out) as Readonly<Record<ErrorCode, ErrorSpec>>;
}

/** The registry: code -> meaning, operator action, HTTP status. */
export const errorRegistry = merge();

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(errorRegistry, code);
}

/** An error with a stable code. `details` is safe to show to the caller (no secrets, no stack). */
export class PerchError extends Error {
  override readonly name = 'PerchError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get httpStatus(): number {
    return errorRegistry[this.code].http ?? 500;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isPerchError(err: unknown): err is PerchError {
  return err instanceof PerchError;
}

/** A result type for operations that report failures as values rather than throwing. */
export type Result<T, E = PerchError> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const fail = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });
export { renderErrorsDoc } from './doc';
