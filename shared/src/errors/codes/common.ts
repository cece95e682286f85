import { defineErrors } from '../define';

/** Codes shared by every program: input validation, config, protocol. */
export const commonErrors = defineErrors({
  E_INTERNAL: {
    meaning: 'An unexpected internal error; the full detail is in the log, never in the response.',
    action: 'Look up the log line with the same request or message id and report it as a bug.',
    http: 500,
  },
  E_INVALID_ID: {
    meaning: 'An id does not match ^[a-z0-9][a-z0-9-]{0,63}$ and cannot become a topic, path or key.',
    action:
      'Use lowercase letters, digits and hyphens, starting with a letter or digit, at most 64 characters.',
    http: 400,
  },
  E_TOPIC_WILDCARD: {
    meaning: 'A publish was attempted on a topic containing the MQTT wildcards + or #.',
    action: 'Publish only to concrete topics built with the shared topic builders.',
  },
  E_TOPIC_UNKNOWN: {
    meaning: 'A topic does not belong to the Perch protocol (wrong prefix, version or shape).',
    action: 'Check the topic prefix in the configuration of the sender and receiver.',
  },
  E_PAYLOAD_TOO_LARGE: {
    meaning: 'A payload is larger than the configured limit and was rejected before parsing.',
    action: 'Send smaller messages, or raise the limit if the sender is trusted and the size is expected.',
    http: 413,
  },
  E_PAYLOAD_ENCODING: {
    meaning: 'A payload is not valid UTF-8 text.',
    action: 'Send JSON encoded as UTF-8.',
    http: 400,
  },
  E_PAYLOAD_JSON: {
    meaning: 'A payload is not well-formed JSON, or nests deeper than allowed.',
    action: 'Fix the sender so that it produces valid JSON.',
    http: 400,
  },
  E_PAYLOAD_FORBIDDEN_KEY: {
    meaning: 'A payload contains a __proto__, constructor or prototype key, which could pollute objects.',
    action: 'Treat the sender as hostile or broken; such keys are never accepted.',
    http: 400,
  },
  E_SCHEMA: {
    meaning: 'A payload is valid JSON but does not match the message schema.',
    action: 'Compare the payload with the schema of its message kind; the error lists each failing path.',
    http: 400,
  },
  E_SCHEMA_VERSION: {
    meaning: 'A message carries a schema version this program does not understand.',
    action: 'Upgrade the older side so that agent and controller speak the same protocol version.',
    http: 400,
  },
  E_CONFIG_INVALID: {
    meaning: 'The configuration (file, PERCH_* environment or flags) has one or more invalid values.',
    action: 'Fix every path listed in the error; nothing starts until the configuration is valid.',
  },
  E_CONFIG_FILE: {
    meaning: 'The configuration file cannot be read or is not valid JSON or YAML.',
    action: 'Check that the file exists, is readable by the service user and parses.',
  },
});
