/**
 * Splits a byte stream of concatenated JPEG images (ffmpeg `-f image2pipe -c:v mjpeg`) into whole images.
 *
 * It walks the JPEG marker structure rather than searching for the first FF D9 after FF D8: segment
 * payloads (EXIF thumbnails, ICC profiles, quantisation tables) may contain those byte pairs, and inside the
 * entropy-coded data FF is always stuffed (FF 00) or a restart marker, so only a real EOI ends an image.
 * Works incrementally across arbitrary chunk boundaries and never holds more than `maxFrameBytes`.
 */
type State =
  | 'seek' // looking for FF of SOI
  | 'seekD8' // saw FF, want D8
  | 'marker' // want FF starting the next marker
  | 'code' // want the marker code
  | 'len0'
  | 'len1'
  | 'skip' // skipping a segment payload
  | 'scan' // entropy-coded data
  | 'scanFF'; // entropy-coded data, just saw FF

export interface JpegSplitterStats {
  /** Images emitted. */
  readonly frames: number;
  /** Images abandoned because they broke the marker structure. */
  readonly corrupt: number;
  /** Images abandoned because they grew beyond maxFrameBytes. */
  readonly oversized: number;
}

export class JpegSplitter {
  private state: State = 'seek';
  private parts: Buffer[] = [];
  private frameBytes = 0;
  private segLen = 0;
  private remaining = 0;
  private sos = false;
  private stats = { frames: 0, corrupt: 0, oversized: 0 };

  constructor(private readonly maxFrameBytes = 16 * 1024 * 1024) {}

  get counters(): JpegSplitterStats {
    return { ...this.stats };
  }

  /** Feeds a chunk; returns the images it completed, in order. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    // Start offset in `chunk` of the bytes belonging to the current image, or -1 when not in an image.
    let from = this.state === 'seek' || this.state === 'seekD8' ? -1 : 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case 'seek': {
          const ff = chunk.indexOf(0xff, i);
          if (ff < 0) {
            i = n;
            break;
          }
          i = ff + 1;
          this.state = 'seekD8';
          break;
        }
        case 'seekD8': {
          const b = chunk[i++]!;
          if (b === 0xd8) {
            this.begin();
            from = i;
          } else if (b !== 0xff) this.state = 'seek';
          break;
        }
        case 'marker': {
          const b = chunk[i++]!;
          if (b === 0xff) this.state = 'code';
          else from = this.abandon('corrupt');
          break;
        }
        case 'code': {
          const b = chunk[i++]!;
          from = this.onMarker(b, chunk, i, from, out);
          break;
        }
        case 'len0':
          this.segLen = chunk[i++]! << 8;
          this.state = 'len1';
          break;
        case 'len1': {
          this.segLen |= chunk[i++]!;
          if (this.segLen < 2) {
            from = this.abandon('corrupt');
            break;
          }
          this.remaining = this.segLen - 2;
          this.state = this.remaining > 0 ? 'skip' : this.sos ? 'scan' : 'marker';
          break;
        }
        case 'skip': {
          const step = Math.min(this.remaining, n - i);
          i += step;
          this.remaining -= step;
          if (this.remaining === 0) this.state = this.sos ? 'scan' : 'marker';
          break;
        }
        case 'scan': {
          const ff = chunk.indexOf(0xff, i);
          if (ff < 0) {
            i = n;
            break;
          }
          i = ff + 1;
          this.state = 'scanFF';
          break;
        }
        case 'scanFF': {
          const b = chunk[i++]!;
          if (b === 0x00 || (b >= 0xd0 && b <= 0xd7)) this.state = 'scan';
          else if (b !== 0xff) from = this.onMarker(b, chunk, i, from, out);
          break;
        }
      }
      if (from >= 0 && this.frameBytes + (i - from) > this.maxFrameBytes) {
        from = this.abandon('oversized');
      }
    }
    if (from >= 0 && from < n && this.inFrame()) {
      this.parts.push(chunk.subarray(from, n));
      this.frameBytes += n - from;
    }
    return out;
  }

  /** Drops a partial image (e.g. when the producing process restarts). */
  reset(): void {
    this.state = 'seek';
    this.parts = [];
    this.frameBytes = 0;
  }

  private inFrame(): boolean {
    return this.state !== 'seek' && this.state !== 'seekD8';
  }

  private begin(): void {
    this.parts = [Buffer.from([0xff, 0xd8])];
    this.frameBytes = 2;
    this.state = 'marker';
  }

  /** Handles marker code `b` (already consumed, so `i` is just past it). Returns the new `from`. */
  private onMarker(b: number, chunk: Buffer, i: number, from: number, out: Buffer[]): number {
    if (b === 0xff) {
      this.state = 'code'; // fill byte
      return from;
    }
    if (b === 0xd9) {
      const total = this.frameBytes + (i - from);
      if (total > this.maxFrameBytes) return this.abandon('oversized');
      this.parts.push(chunk.subarray(from, i));
      out.push(Buffer.concat(this.parts, total));
      this.stats.frames += 1;
      this.reset();
      return -1;
    }
    if (b === 0xd8) {
      // A new image began before the last one ended: the last one is broken, keep the new one.
      this.stats.corrupt += 1;
      this.begin();
      return i;
    }
    if ((b >= 0xd0 && b <= 0xd7) || b === 0x01) {
      this.state = 'marker';
      return from;
    }
    this.sos = b === 0xda;
    this.state = 'len0';
    return from;
  }

  private abandon(kind: 'corrupt' | 'oversized'): number {
    this.stats[kind] += 1;
    this.reset();
    return -1;
  }
}
