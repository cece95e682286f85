import { Duplex, Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Follows MQTT framing (fixed header byte + variable-length "remaining length") on the inbound bytes
 * and fails the stream as soon as one packet announces more than `maxBytes`, before it is buffered.
 */
export class PacketSizeGuard extends Transform {
  private state: 'header' | 'length' | 'body' = 'header';
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'header') {
        i++;
        this.state = 'length';
        this.remaining = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === 'length') {
        const b = chunk[i++] ?? 0;
        this.remaining += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (this.lengthBytes > 4) return done(new Error('malformed MQTT remaining length'));
        if ((b & 0x80) === 0) {
          if (this.remaining > this.maxBytes)
            return done(new Error(`MQTT packet of ${this.remaining} bytes exceeds ${this.maxBytes}`));
          this.state = this.remaining === 0 ? 'header' : 'body';
        }
      } else {
        const take = Math.min(this.remaining, chunk.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'header';
      }
    }
    done(null, chunk);
  }
}

/** A duplex whose reads go through the guard and whose writes go straight to the socket. */
export function guardedConnection(socket: Socket, maxBytes: number): Duplex {
  const guard = new PacketSizeGuard(maxBytes);
  socket.pipe(guard);
  const conn = Duplex.from({ readable: guard, writable: socket });
  guard.on('error', () => socket.destroy());
  conn.on('close', () => socket.destroy());
  socket.on('error', () => conn.destroy());
  return conn;
}
