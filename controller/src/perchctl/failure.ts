import { errorRegistry, isErrorCode } from '@perch/shared';

/** Exit codes perchctl promises to scripts. */
export const EXIT = {
  ok: 0,
  /** Anything not covered below. */
  error: 1,
  /** Bad arguments or options. */
  usage: 2,
  /** The controller could not be reached. */
  unreachable: 3,
  /** Not logged in, bad token, or a role too weak for the command. */
  auth: 4,
  /** The thing named does not exist. */
  notFound: 5,
  /** The controller refused the request as invalid or conflicting. */
  rejected: 6,
  /** The controller failed (5xx). */
  server: 7,
} as const;

/**
 * A failure perchctl reports to the person at the terminal: the shared error code, a message, a hint
 * (the registry's operator action when the code is known) and the exit code.
 */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number,
    readonly status?: number,
  ) {
    super(message);
  }

  get hint(): string | undefined {
    return isErrorCode(this.code) ? errorRegistry[this.code].action : undefined;
  }
}

export function exitCodeForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status >= 500) return EXIT.server;
  if (status >= 400) return EXIT.rejected;
  return EXIT.error;
}
