import { defineErrors } from '../define';

/** Codes raised by the controller domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const controllerErrors = defineErrors({
  E_AUTH_MISSING: {
    meaning: 'The request carries no bearer token.',
    action: 'Send `Authorization: Bearer <token>` with an operator or device token.',
    http: 401,
  },
  E_AUTH_INVALID: {
    meaning: 'The bearer token is unknown, malformed or revoked.',
    action: 'Create a new token with an admin token (perchctl tokens create) and use it.',
    http: 401,
  },
  E_AUTH_FORBIDDEN: {
    meaning: 'The token is valid but its role is too weak for this route.',
    action: 'Use a token with the role the route needs (viewer < operator < admin).',
    http: 403,
  },
  E_DEVICE_REVOKED: {
    meaning: 'The device has been revoked; its API calls, downloads and MQTT sessions are refused.',
    action: 'Enroll the device again with a new enrollment token if it should rejoin the fleet.',
    http: 401,
  },
  E_TARGET_NOT_ASSIGNED: {
    meaning:
      'A device asked for a model artifact that is not in its current desired state; devices may download only the targets assigned to them.',
    action:
      'Assign the model version to the device (perchctl assign); a device still on an older desired revision picks up the new one and retries.',
    http: 403,
  },
  E_NOT_FOUND: {
    meaning: 'The requested resource does not exist.',
    action: 'Check the id or name in the request path.',
    http: 404,
  },
  E_CONFLICT: {
    meaning: 'The request conflicts with the current state (the resource exists already or is immutable).',
    action: 'Use a new name or version; published versions never change.',
    http: 409,
  },
  E_HTTP_BAD_REQUEST: {
    meaning: 'The HTTP request is malformed (bad content type, unparseable body, bad header).',
    action: 'Send JSON with Content-Type application/json, or multipart/form-data for uploads.',
    http: 400,
  },
  E_RANGE_NOT_SATISFIABLE: {
    meaning: 'The requested byte range lies outside the file.',
    action: 'Request a range within the file length, or the whole file.',
    http: 416,
  },
  E_ENROLL_TOKEN_INVALID: {
    meaning: 'The enrollment token is unknown or was revoked.',
    action: 'Ask an operator for a new enrollment token.',
    http: 401,
  },
  E_ENROLL_TOKEN_EXPIRED: {
    meaning: 'The enrollment token has expired.',
    action: 'Ask an operator for a new enrollment token.',
    http: 401,
  },
  E_ENROLL_TOKEN_EXHAUSTED: {
    meaning: 'The enrollment token has no uses left.',
    action: 'Ask an operator for a new enrollment token, or one with more uses.',
    http: 401,
  },
  E_ENROLL_PROOF_INVALID: {
    meaning: 'The proof of possession does not verify against the public key, or its timestamp is too old.',
    action: 'Sign the enrollment challenge with the private key matching publicKey; check the device clock.',
    http: 401,
  },
  E_ENROLL_KEY_INVALID: {
    meaning: 'The public key in an enrollment is not an Ed25519 SPKI key.',
    action: 'Send the Ed25519 public key as SPKI PEM or base64 DER.',
    http: 400,
  },
  E_ENROLL_KEY_REUSED: {
    meaning: 'The public key already belongs to an enrolled device.',
    action: 'Generate a new key pair on the device, or revoke the old device first.',
    http: 409,
  },
  E_MQTT_SENDER_MISMATCH: {
    meaning: 'An MQTT message was published in another device subtree than its sender.',
    action: 'Treat the device as misconfigured or hostile; devices publish only under their own id.',
  },
  E_MQTT_DUPLICATE: {
    meaning: 'An MQTT message with an id already stored was received again and ignored.',
    action: 'None: redelivery of QoS 1 messages is expected.',
  },
  E_MQTT_UNKNOWN_DEVICE: {
    meaning: 'An MQTT message came from a device that is not enrolled or was revoked.',
    action: 'Check the broker credentials; revoked devices should be refused by the broker.',
  },
  E_BROKER_PORT_IN_USE: {
    meaning: 'The embedded MQTT broker cannot listen because its port is taken.',
    action: 'Stop the other broker, choose another port (PERCH_MQTT_PORT) or use the external broker mode.',
  },
  E_BROKER_UNAVAILABLE: {
    meaning: 'The controller cannot reach or provision the external MQTT broker.',
    action:
      'Check the broker URL, the controller credentials and that the dynamic-security plugin is loaded.',
    http: 503,
  },
  E_MODEL_NOT_ONNX: {
    meaning: 'The uploaded model file is not an ONNX model onnxruntime can load.',
    action: 'Upload a valid .onnx file exported for onnxruntime.',
    http: 422,
  },
  E_MODEL_SPEC_INVALID: {
    meaning: 'The bundle spec.json is missing, malformed or does not match the schema.',
    action: 'Fix spec.json; the error lists each failing path.',
    http: 422,
  },
  E_MODEL_SPEC_MISMATCH: {
    meaning:
      'The spec does not match the model: input name, shape or layout differ from what the model declares.',
    action: 'Make the spec input name, layout and size agree with the model inputs (see the error details).',
    http: 422,
  },
  E_MODEL_BUNDLE_INCOMPLETE: {
    meaning: 'The upload lacks model.onnx, spec.json or labels.txt, or carries an unknown part.',
    action: 'Upload model.onnx, spec.json and labels.txt (and optionally sample) as multipart fields.',
    http: 400,
  },
  E_MODEL_TOO_LARGE: {
    meaning: 'A file in the model bundle is larger than the configured limit.',
    action: 'Upload a smaller model, or raise the controller limit for model uploads.',
    http: 413,
  },
  E_MODEL_SAMPLE_INVALID: {
    meaning:
      'The bundle sample input does not fit the model input as the spec describes it (wrong byte length), or one inference on it fails or gives non-finite outputs.',
    action:
      'Upload the raw little-endian elements of the spec input tensor (batch 1, the spec layout, size and dtype), or no sample; the error names expected and actual bytes or the inference error.',
    http: 422,
  },
  E_MODEL_SECURITY_VERSION: {
    meaning: 'The requested security version is lower than the model current one; it never decreases.',
    action: 'Use a security version at least equal to the current one.',
    http: 409,
  },
  E_TUF_KEYS: {
    meaning: 'The TUF signing keys in the data folder are missing, unreadable or inconsistent with root.',
    action:
      'Restore the keys folder from backup, or re-initialise the repository with perch-controller init.',
  },
  E_DB_MIGRATION: {
    meaning: 'A database migration failed, or the database is newer than this controller.',
    action: 'Restore the database from backup or upgrade the controller.',
  },
});
