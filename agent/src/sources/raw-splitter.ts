/** Cuts a byte stream into fixed-size frames (ffmpeg rawvideo), across arbitrary chunk boundaries. */
export class FixedSizeSplitter {
  private parts: Buffer[] = [];
  private pending = 0;

  constructor(readonly frameBytes: number) {
    if (!Number.isInteger(frameBytes) || frameBytes < 1) throw new RangeError('frameBytes must be positive');
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const need = this.frameBytes - this.pending;
      const take = Math.min(need, chunk.length - offset);
      this.parts.push(chunk.subarray(offset, offset + take));
      this.pending += take;
      offset += take;
      if (this.pending === this.frameBytes) {
        out.push(
          this.parts.length === 1 ? Buffer.from(this.parts[0]!) : Buffer.concat(this.parts, this.pending),
        );
        this.parts = [];
        this.pending = 0;
      }
    }
    return out;
  }

  reset(): void {
    this.parts = [];
    this.pending = 0;
  }
}
