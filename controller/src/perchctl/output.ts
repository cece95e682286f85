import type { Writable } from 'node:stream';

/** Where a command writes: tables for people, JSON for scripts; diagnostics on stderr. */
export class Output {
  constructor(
    readonly stdout: Writable,
    readonly stderr: Writable,
    readonly json: boolean,
  ) {}

  /** Prints rows as an aligned table, or the raw value as JSON with --json. */
  table<T>(
    rows: T[],
    columns: Array<[header: string, cell: (row: T) => unknown]>,
    raw: unknown = rows,
  ): void {
    if (this.json) {
      this.data(raw);
      return;
    }
    if (rows.length === 0) {
      this.stdout.write('(none)\n');
      return;
    }
    const cells = rows.map((r) => columns.map(([, f]) => formatCell(f(r))));
    const headers = columns.map(([h]) => h);
    const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (values: string[]) =>
      values
        .map((v, i) => v.padEnd(widths[i]!))
        .join('  ')
        .trimEnd();
    this.stdout.write(`${line(headers)}\n`);
    for (const c of cells) this.stdout.write(`${line(c)}\n`);
  }

  /** Prints `key: value` lines, or JSON with --json. */
  record(value: Record<string, unknown>): void {
    if (this.json) {
      this.data(value);
      return;
    }
    const width = Math.max(...Object.keys(value).map((k) => k.length));
    for (const [k, v] of Object.entries(value)) {
      const text =
        typeof v === 'object' && v !== null && !Array.isArray(v) ? JSON.stringify(v) : formatCell(v);
      this.stdout.write(`${`${k}:`.padEnd(width + 2)}${text}\n`);
    }
  }

  data(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, this.json ? 2 : 0)}\n`);
  }

  /** One line for a person (suppressed with --json, where stdout is for data). */
  say(text: string): void {
    if (!this.json) this.stdout.write(`${text}\n`);
  }

  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }
}

export function formatCell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (Array.isArray(v)) return v.length ? v.map(String).join(',') : '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function formatTime(ms: number | null | undefined): string {
  return typeof ms === 'number' ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** A progress bar on stderr: redrawn in place on a terminal, one line per 25% otherwise. */
export function progressBar(
  stream: Writable & { isTTY?: boolean },
  label: string,
): (sent: number, total: number) => void {
  let lastQuarter = -1;
  return (sent, total) => {
    const pct = total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 100;
    if (stream.isTTY) {
      const filled = Math.round(pct / 4);
      stream.write(
        `\r${label} [${'#'.repeat(filled)}${'.'.repeat(25 - filled)}] ${String(pct).padStart(3)}%`,
      );
      if (sent >= total) stream.write('\n');
      return;
    }
    const quarter = Math.floor(pct / 25);
    if (quarter !== lastQuarter) {
      lastQuarter = quarter;
      stream.write(`${label} ${pct}% (${sent}/${total} bytes)\n`);
    }
  };
}
