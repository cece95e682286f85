import { defineErrors } from '../define';

/** Codes raised by the integrations domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const integrationsErrors = defineErrors({});
