import { defineErrors } from '../define';

/** Codes raised by the integrations domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const integrationsErrors = defineErrors({
  E_DYNSEC_UNAVAILABLE: {
    meaning:
      "The controller cannot talk to Mosquitto's dynamic-security plugin (not connected, or its admin client may not use $CONTROL/dynamic-security/#).",
    action:
      'Check that Mosquitto runs with the plugin loaded and that the controller uses the admin client created by `mosquitto_ctrl dynsec init` (deploy/mosquitto/README.md).',
    http: 503,
  },
  E_DYNSEC_TIMEOUT: {
    meaning:
      'The dynamic-security plugin did not answer a command in time; the change may or may not have been applied.',
    action:
      'Check the broker is reachable and its log; the operation is safe to retry (the client makes each step idempotent).',
    http: 503,
  },
  E_DYNSEC_COMMAND: {
    meaning: 'The dynamic-security plugin refused a command (the plugin error text is in the details).',
    action:
      'Read the plugin error in the details; a missing or duplicate client or role usually means the broker state was edited by hand.',
    http: 502,
  },
  E_HA_DISCOVERY_INVALID: {
    meaning:
      'A Home Assistant discovery payload breaks the documented discovery rules (required keys, id characters, unique_id).',
    action:
      'This is a bug in the payload builder or its input (pipeline or label names); report it with the validation issues from the log.',
  },
  E_WEBHOOK_INVALID: {
    meaning: 'A webhook subscription is invalid (URL not http(s), secret too short, bad filter).',
    action: 'Fix the subscription: an http(s) URL, a secret of at least 32 characters, filters of valid ids.',
    http: 400,
  },
  E_WEBHOOK_NOT_FOUND: {
    meaning: 'No webhook subscription or dead letter with that id.',
    action: 'List subscriptions or dead letters to find the right id.',
    http: 404,
  },
  E_WEBHOOK_DELIVERY: {
    meaning:
      'A webhook delivery attempt failed (network error, timeout, or a non-2xx answer); it will be retried.',
    action: 'Check the receiver is up and answers 2xx within the timeout; retries continue with backoff.',
    http: 502,
  },
  E_WEBHOOK_DEAD_LETTER: {
    meaning: 'A webhook delivery failed on every attempt and was moved to the dead-letter list.',
    action: 'Fix the receiver, then redeliver the dead letter (or delete it once handled elsewhere).',
  },
  E_WEBHOOK_SIGNATURE: {
    meaning: 'A webhook signature header is missing, malformed, too old, or does not match the body.',
    action:
      'Use the subscription secret and the raw request body; check both clocks (the tolerance is 5 minutes by default).',
    http: 401,
  },
});
