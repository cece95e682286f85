/**
 * What the controller needs from an MQTT broker, whichever it is: embedded aedes, Mosquitto driven
 * through its dynamic-security plugin (mode `mosquitto`), or any MQTT 5 broker (mode `external`).
 */
export interface DeviceBus {
  /** Publishes retained, QoS 1. */
  publishRetained(topic: string, payload: string): Promise<void>;
  /** Publishes QoS 1, not retained (the fleet topic). */
  publish(topic: string, payload: string): Promise<void>;
  /** Makes a newly enrolled device able to connect with this password. */
  addDevice(deviceId: string, password: string): Promise<void>;
  /** Refuses the device from now on and cuts its live session. */
  removeDevice(deviceId: string): Promise<void>;
}

/** Delivered to the ingest for every message on a device topic. */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  /** The authenticated sender's device id when the broker knows it (embedded mode). */
  senderId?: string;
}
