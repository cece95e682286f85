import { redact } from './redact';

/**
 * Keeps the last lines a child process wrote to stderr: when ffmpeg dies, its last words (codec not found,
 * connection refused, 401) are the only useful diagnosis, and they go into the source's health and error.
 */
export class StderrTail {
  private lines: string[] = [];
  private partial = '';

  constructor(
    private readonly maxLines = 20,
    private readonly maxLineChars = 500,
  ) {}

  push(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const pieces = text.split(/\r?\n|\r/);
    this.partial = (pieces.pop() ?? '').slice(-this.maxLineChars);
    for (const p of pieces) {
      const line = redact(p.trimEnd());
      if (line.length > 0) this.lines.push(line.slice(0, this.maxLineChars));
    }
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
  }

  /** The retained lines, oldest first, including an unterminated last line. */
  get(): string[] {
    const tail = redact(this.partial.trim());
    const all = tail ? [...this.lines, tail] : [...this.lines];
    return all.slice(-this.maxLines);
  }

  clear(): void {
    this.lines = [];
    this.partial = '';
  }
}
