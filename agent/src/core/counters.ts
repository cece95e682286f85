/**
 * In-process counters: every rejected input, dropped message and failed step bumps one, and telemetry
 * reports them (`agent.errors.<code>` and friends). Kept apart from logging so tests can assert on them.
 */
export class Counters {
  private readonly values = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  /** Counts a coded error under `errors.<code>`. */
  error(code: string): void {
    this.inc(`errors.${code.toLowerCase()}`);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}
