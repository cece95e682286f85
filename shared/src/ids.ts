import { PerchError } from './errors';

/** Device, model, pipeline and token ids: safe as topic levels, file names and SQL values. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/** Returns the id unchanged, or throws E_INVALID_ID naming what the id was for. */
export function assertId(id: unknown, what = 'id'): string {
  if (!isValidId(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 80)) : typeof id;
    throw new PerchError('E_INVALID_ID', `${what} ${shown} does not match ${ID_PATTERN.source}`, { what });
  }
  return id;
}
