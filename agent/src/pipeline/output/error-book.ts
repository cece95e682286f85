import { isPerchError } from '@perch/shared';
import type { CodedErrorInfo } from '../types';

/** Coded errors by code with the last occurrence, for stats/telemetry. Unknown errors count as E_INTERNAL. */
export class ErrorBook {
  private readonly byCode = new Map<string, { count: number; last: CodedErrorInfo }>();
  private latest: CodedErrorInfo | undefined;

  /** Records the error and returns its info; `count` tells the caller whether this is the first of its code. */
  record(err: unknown, at: number): CodedErrorInfo & { count: number } {
    const code = isPerchError(err) ? err.code : 'E_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    const info: CodedErrorInfo = { code, message: message.slice(0, 500), at };
    const entry = this.byCode.get(code) ?? { count: 0, last: info };
    entry.count++;
    entry.last = info;
    this.byCode.set(code, entry);
    this.latest = info;
    return { ...info, count: entry.count };
  }

  count(code: string): number {
    return this.byCode.get(code)?.count ?? 0;
  }

  snapshot(): Record<string, { count: number; last: CodedErrorInfo }> {
    return Object.fromEntries([...this.byCode].map(([k, v]) => [k, { count: v.count, last: v.last }]));
  }

  get last(): CodedErrorInfo | undefined {
    return this.latest;
  }
}
