/**
 * Cuts a stream of interleaved samples (audio: 1 channel; sensors: `channels` values per reading) into
 * windows of `window` readings, a new window every `hop` readings. hop < window overlaps windows, hop >
 * window skips readings between them. Memory is one window, whatever the input rate.
 */
export class Windower {
  private readonly buf: Float32Array;
  private filled = 0;
  /** Readings still to skip before the next window starts (hop > window). */
  private skip = 0;

  constructor(
    readonly window: number,
    readonly hop: number,
    readonly channels = 1,
  ) {
    if (!(window >= 1 && hop >= 1 && channels >= 1))
      throw new RangeError('window, hop and channels must be >= 1');
    this.buf = new Float32Array(window * channels);
  }

  /** Adds whole readings (values.length must be a multiple of channels); returns completed windows. */
  push(values: ArrayLike<number>): Float32Array[] {
    const out: Float32Array[] = [];
    const ch = this.channels;
    const total = values.length;
    let i = 0;
    while (i < total) {
      if (this.skip > 0) {
        const n = Math.min(this.skip * ch, total - i);
        i += n;
        this.skip -= n / ch;
        continue;
      }
      const n = Math.min(this.buf.length - this.filled, total - i);
      if (values instanceof Float32Array) this.buf.set(values.subarray(i, i + n), this.filled);
      else for (let k = 0; k < n; k++) this.buf[this.filled + k] = values[i + k]!;
      this.filled += n;
      i += n;
      if (this.filled === this.buf.length) {
        out.push(this.buf.slice());
        if (this.hop < this.window) {
          this.buf.copyWithin(0, this.hop * ch, this.filled);
          this.filled -= this.hop * ch;
        } else {
          this.filled = 0;
          this.skip = this.hop - this.window;
        }
      }
    }
    return out;
  }

  reset(): void {
    this.filled = 0;
    this.skip = 0;
  }
}
