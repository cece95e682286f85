import { defineErrors } from '../define';

/** Codes raised by the agent domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const agentErrors = defineErrors({
  E_AGENT_NOT_ENROLLED: {
    meaning:
      'The agent has no stored credentials and lacks the enrollment token or the controller URL to obtain them; it exits with status 2.',
    action:
      'Set PERCH_CONTROLLER_URL and PERCH_ENROLL_TOKEN (a token from `perchctl enroll-tokens create`), then restart the agent.',
  },
  E_AGENT_ENROLL_FAILED: {
    meaning:
      'Enrollment could not reach the controller or got an unexpected answer; it is retried with backoff.',
    action: 'Check the controller URL and that the controller is reachable from the device.',
  },
  E_AGENT_ENROLL_REFUSED: {
    meaning: 'The controller refused the enrollment (token invalid, expired, used up, or the proof failed).',
    action: 'Read the controller code in the details; ask an operator for a new enrollment token.',
  },
  E_AGENT_STATE_CORRUPT: {
    meaning:
      'A file in the agent state folder is unreadable or malformed; the agent fell back to a safe value.',
    action: 'Usually none: the agent repairs it. If it repeats, check the storage medium of the device.',
  },
  E_AGENT_STATE_DB: {
    meaning: 'The agent SQLite database (outbox, command log) failed an operation.',
    action: 'Check free disk space and the storage medium; the agent keeps running without the failed write.',
  },
  E_UPDATE_METADATA: {
    meaning:
      'The signed update metadata could not be fetched or did not verify (signatures, versions, lengths).',
    action: 'Check the controller TUF repository and keys; the previous model keeps running.',
  },
  E_UPDATE_METADATA_EXPIRED: {
    meaning: 'The signed update metadata has expired (possible freeze attack); nothing was installed.',
    action: 'Re-sign the timestamp/snapshot metadata on the controller; check the device clock.',
  },
  E_UPDATE_UNTRUSTED_TIME: {
    meaning: 'The device clock is earlier than the agent build time, so metadata expiry cannot be checked.',
    action: 'Give the device a working time source (NTP, an RTC); updates wait until the clock is sane.',
  },
  E_UPDATE_TARGET_UNKNOWN: {
    meaning: 'The desired model target is not listed in the signed targets metadata.',
    action: 'Publish the model version on the controller before putting it into a rollout.',
  },
  E_UPDATE_TARGET_MISMATCH: {
    meaning: 'The desired state names a sha256 or length that differs from the signed target.',
    action:
      'The desired state and the signed metadata disagree: check the controller; nothing was installed.',
  },
  E_UPDATE_HASH_MISMATCH: {
    meaning: 'A downloaded artifact does not match its signed sha256 or length (tampered or corrupted).',
    action: 'Check the artifact store and the network path; the partial file was discarded.',
  },
  E_UPDATE_SECURITY_VERSION: {
    meaning: 'The desired model has a lower security version than the one installed; it is refused.',
    action: 'Re-issue the old model under the current security version to roll back.',
  },
  E_UPDATE_SECURITY_VERSION_MISMATCH: {
    meaning:
      'The desired state names a security version that differs from the one in the signed target (custom.securityVersion), or the signed target has none; nothing was installed.',
    action:
      'The desired state was altered or is stale: check the controller and the broker ACLs; retried with backoff, so a corrected desired state goes through.',
  },
  E_UPDATE_BUNDLE_INVALID: {
    meaning: 'The model bundle is not a valid ustar archive with model.onnx, spec.json and labels.txt.',
    action: 'Re-upload the bundle; the controller should have rejected it.',
  },
  E_UPDATE_NO_SPACE: {
    meaning: 'Not enough free disk space in the state folder to download the model.',
    action: 'Free disk space on the device; old model versions are collected automatically.',
  },
  E_UPDATE_PROBATION_FAILED: {
    meaning:
      'A new model failed its probation (load, warm-up, self-test or trial inferences); it was reverted.',
    action: 'Test the bundle with onnxruntime on the same architecture; the details name the failing stage.',
  },
  E_UPDATE_PROBATION_CRASHED: {
    meaning: 'The agent crashed repeatedly while a new model was on trial; the previous model was restored.',
    action: 'Inspect the journal of the crashes; the model probably crashes onnxruntime on this device.',
  },
  E_UPDATE_MODEL_TAMPERED: {
    meaning:
      'An installed model no longer matches its sha256 when re-checked before loading; it was refused.',
    action: 'Check the storage medium; the agent falls back to the previous model and downloads it again.',
  },
  E_UPDATE_ROLLBACK: {
    meaning: 'The active model could not be used and the previous model was restored.',
    action: 'Read the cause in the details; the device keeps running the previous model.',
  },
  E_DOWNLOAD_HTTP: {
    meaning: 'The artifact server answered a download with an HTTP error or the connection failed.',
    action:
      'Check that the controller serves /tuf/targets and that the device token is valid; retried later.',
  },
  E_DOWNLOAD_TOO_LARGE: {
    meaning: 'A download sent more bytes than the signed length; it was aborted.',
    action: 'Treat the server or network path as hostile or broken; the partial file was discarded.',
  },
  E_DOWNLOAD_DEADLINE: {
    meaning: 'A download did not finish within its overall deadline; it was aborted and is resumed later.',
    action: 'Check the bandwidth of the device; raise the download deadline for large models.',
  },
  E_DOWNLOAD_TOO_SLOW: {
    meaning: 'A download stayed below the minimum throughput; it was aborted and is resumed later.',
    action: 'Check the network path of the device; the partial file is kept for a resumed download.',
  },
  E_MQTT_INBOUND_REJECTED: {
    meaning: 'An MQTT message to the agent was refused (size, JSON, schema or unknown topic) and counted.',
    action: 'Check the sender; the agent ignores the message and keeps its current state.',
  },
  E_MQTT_CONNECT: {
    meaning: 'The MQTT connection failed or dropped; the agent reconnects with jittered backoff.',
    action: 'Check the broker URL, credentials (revoked device?) and the network.',
  },
  E_OUTBOX_DROPPED: {
    meaning: 'The outbox was full for a kind of message and dropped the oldest (routine telemetry first).',
    action: 'Restore the broker connection; raise the outbox limits if outages are long and disk allows.',
  },
  E_CMD_EXPIRED: {
    meaning: 'A command arrived after its expiry time and was not executed.',
    action: 'Send commands with a later expiry, or check the clocks of controller and device.',
  },
  E_CMD_DUPLICATE: {
    meaning: 'A command id was seen before; it is not executed twice.',
    action: 'None: redelivery of QoS 1 messages is expected.',
  },
  E_CMD_UNKNOWN: {
    meaning: 'The agent does not know the command name.',
    action: 'Use one of report-now, restart-pipeline, snapshot, reload-config.',
  },
  E_CMD_FAILED: {
    meaning: 'A command ran and failed; the details carry the cause.',
    action: 'Read the message in the command result and the agent log.',
  },
  E_SYSTEMD_NOTIFY: {
    meaning: 'A notification to systemd (READY, WATCHDOG, STOPPING) could not be sent.',
    action: 'Check NOTIFY_SOCKET and the service type; the agent keeps running.',
  },
  E_AGENT_UNHEALTHY: {
    meaning:
      'A health check (event loop, pipelines, outbox) is not making progress; the watchdog is withheld.',
    action: 'systemd restarts the agent when the watchdog expires; read the log for the stalled part.',
  },
});
