import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export type { IClientOptions, MqttClient };

/**
 * mqtt.js as the agent uses it: `connect` with `writeCache: false` unless the caller says otherwise.
 * With the cache on, mqtt-packet builds 65 536 two-byte Buffers (one per packet id) when a client
 * writes its first packet: 6.5 MB of heap objects that all survive, which also makes V8 grow the young
 * generation to its maximum. Measured on the idle agent (test/bench/agent.js): about 20 MB of RSS.
 * An agent sends a few packets a minute, so allocating two bytes per packet costs nothing.
 */
function connect(url: string, options: IClientOptions): MqttClient {
  return mqtt.connect(url, { writeCache: false, ...options });
}

export default { connect };
