import { defineErrors } from '../define';

/** Codes raised by the cli domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const cliErrors = defineErrors({});
