import { defineErrors } from '../define';

/** Codes raised by the agent domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const agentErrors = defineErrors({});
