import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface RecordedPacket {
  /** `up`: client to broker; `down`: broker to client. */
  dir: 'up' | 'down';
  at: number;
  packet: Packet;
}

/**
 * A TCP proxy in front of a broker that decodes every MQTT packet in both directions (mqtt-packet,
 * the codec mqtt.js uses), so tests can check what is on the wire: CONNECT properties, will
 * properties, the message expiry of delivered PUBLISHes. It can also cut every connection at once
 * (what the broker sees when a device is killed or its network drops) and refuse new ones.
 */
export class MqttRecordingProxy {
  readonly packets: RecordedPacket[] = [];
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<MqttRecordingProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new MqttRecordingProxy(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client: net.Socket) => proxy.accept(client, target));
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const broker = net.connect(target.port, target.host);
    this.sockets.add(client).add(broker);
    const up = mqttPacket.parser({ protocolVersion: 4 });
    let down: ReturnType<typeof mqttPacket.parser> | undefined;
    const pendingDown: Buffer[] = [];
    up.on('packet', (packet: Packet) => {
      this.packets.push({ dir: 'up', at: Date.now(), packet });
      if (packet.cmd === 'connect') {
        const version = packet.protocolVersion ?? 4;
        (up as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = version;
        down = mqttPacket.parser({ protocolVersion: version });
        down.on('packet', (p: Packet) => this.packets.push({ dir: 'down', at: Date.now(), packet: p }));
        for (const chunk of pendingDown.splice(0)) down.parse(chunk);
      }
    });
    client.on('data', (chunk: Buffer) => {
      up.parse(chunk);
      broker.write(chunk);
    });
    broker.on('data', (chunk: Buffer) => {
      if (down) down.parse(chunk);
      else pendingDown.push(chunk);
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      broker.destroy();
      this.sockets.delete(client);
      this.sockets.delete(broker);
    };
    client.on('close', close).on('error', close);
    broker.on('close', close).on('error', close);
  }

  /** Drops every open connection without an MQTT DISCONNECT. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** While refusing, new connections are closed at once (the device cannot reach the broker). */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Recorded packets of one kind. */
  of<C extends Packet['cmd']>(
    dir: 'up' | 'down',
    cmd: C,
  ): Array<RecordedPacket & { packet: Extract<Packet, { cmd: C }> }> {
    return this.packets.filter(
      (p): p is RecordedPacket & { packet: Extract<Packet, { cmd: C }> } =>
        p.dir === dir && p.packet.cmd === cmd,
    );
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
