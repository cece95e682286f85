import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** Connects over MQTT 5 without automatic reconnects; rejects with the CONNACK reason code. */
export function connect5(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options,
    });
    const onError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('error', onError);
    client.once('connect', () => {
      client.off('error', onError);
      resolve(client);
    });
  });
}

/** The reason code of a refused connection attempt (undefined when it was accepted). */
export async function connectRefusal(url: string, options: IClientOptions = {}): Promise<number | undefined> {
  try {
    const client = await connect5(url, options);
    await client.endAsync();
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

/** PUBACK reason code of a QoS 1 publish: 0 on success, e.g. 0x87 when not authorised. */
export async function pubackCode(
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  options: { retain?: boolean } = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, { qos: 1, retain: options.retain ?? false }, (err, packet) => {
      const code = (err as { code?: number } | undefined)?.code;
      if (err && code === undefined) reject(err);
      else resolve(code ?? (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0);
    });
  });
}

/** SUBACK reason codes for each filter (granted QoS 0-2, or >= 0x80 on refusal). */
export async function subackCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    // On a refusal mqtt.js reports an error but the SUBACK packet still carries every code.
    client.subscribe(filters, { qos: 1 }, (err, _granted, packet) => {
      const codes = (packet as { granted?: number[] } | undefined)?.granted;
      if (codes) resolve(codes);
      else reject(err ?? new Error('no SUBACK'));
    });
  });
}

/** Records every message a client receives. */
export function recorder(client: MqttClient): Array<{ topic: string; payload: Buffer; retain: boolean }> {
  const seen: Array<{ topic: string; payload: Buffer; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload, retain: packet.retain }));
  return seen;
}

export async function endAll(clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => c?.endAsync(true).catch(() => undefined)));
}
