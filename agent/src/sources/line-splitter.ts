/**
 * Splits a byte stream into text lines (LF or CRLF) with a bound on line length, so a sensor that never
 * prints a newline cannot grow memory without limit. An over-long line is reported once and skipped up to
 * its newline.
 */
export type LineEvent = { kind: 'line'; text: string } | { kind: 'too-long'; bytes: number };

export class LineSplitter {
  private parts: Buffer[] = [];
  private pending = 0;
  private skipping = false;
  private skipped = 0;

  constructor(private readonly maxLineBytes = 64 * 1024) {}

  push(chunk: Buffer): LineEvent[] {
    const out: LineEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.take(chunk.subarray(start, nl), out, true);
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start), out, false);
    return out;
  }

  /** Emits a last line that had no newline (end of a file or of a process's output). */
  flush(): LineEvent[] {
    const out: LineEvent[] = [];
    if (this.skipping) out.push({ kind: 'too-long', bytes: this.skipped });
    else if (this.pending > 0) out.push({ kind: 'line', text: this.text() });
    this.parts = [];
    this.pending = 0;
    this.skipping = false;
    this.skipped = 0;
    return out;
  }

  private take(piece: Buffer, out: LineEvent[], ends: boolean): void {
    if (this.skipping) {
      this.skipped += piece.length;
    } else if (this.pending + piece.length > this.maxLineBytes) {
      this.skipping = true;
      this.skipped = this.pending + piece.length;
      this.parts = [];
      this.pending = 0;
    } else {
      this.parts.push(piece);
      this.pending += piece.length;
    }
    if (!ends) return;
    if (this.skipping) {
      out.push({ kind: 'too-long', bytes: this.skipped });
      this.skipping = false;
      this.skipped = 0;
    } else {
      out.push({ kind: 'line', text: this.text() });
    }
    this.parts = [];
    this.pending = 0;
  }

  private text(): string {
    const s = Buffer.concat(this.parts, this.pending).toString('utf8');
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  }
}
