import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { CliFailure, EXIT, exitCodeForStatus } from './failure';
import type { Profile } from './profile';

export type Query = Record<string, string | number | boolean | undefined>;

export interface UploadPart {
  /** Form field name. */
  name: string;
  /** A file to stream, or an in-memory value for a plain field. */
  file?: string;
  value?: string;
}

/** Called with bytes sent so far and the total, while an upload streams. */
export type ProgressFn = (sent: number, total: number) => void;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** A thin client for the controller's `/api/v1`: bearer auth, JSON, coded failures. */
export class ApiClient {
  constructor(
    private readonly profile: Profile,
    private readonly timeoutMs = 30_000,
  ) {}

  get baseUrl(): string {
    return this.profile.url;
  }

  url(pathname: string, query?: Query): URL {
    const u = new URL(`${this.profile.url}/api/v1${pathname}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async get<T>(pathname: string, query?: Query): Promise<T> {
    return this.request<T>('GET', pathname, { query });
  }

  async post<T>(pathname: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', pathname, { body });
  }

  async put<T>(pathname: string, body?: unknown): Promise<T> {
    return this.request<T>('PUT', pathname, { body });
  }

  async delete<T>(pathname: string): Promise<T> {
    return this.request<T>('DELETE', pathname, {});
  }

  async request<T>(method: string, pathname: string, opts: { query?: Query; body?: unknown }): Promise<T> {
    const target = this.url(pathname, opts.query);
    let res: Response;
    try {
      res = await fetch(target, {
        method,
        headers: {
          authorization: `Bearer ${this.profile.token}`,
          accept: 'application/json',
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw unreachable(this.profile.url, err);
    }
    const text = await res.text();
    return parseResponse<T>(res.status, text);
  }

  /** Streams a multipart/form-data body (files from disk) and reports progress. */
  upload<T>(pathname: string, parts: UploadPart[], onProgress?: ProgressFn): Promise<T> {
    const target = this.url(pathname);
    const boundary = `----perchctl${Date.now().toString(16)}${Math.random().toString(16).slice(2)}`;
    const pieces: Array<{ head: Buffer; file?: string; value?: Buffer; size: number }> = parts.map((p) => {
      const disposition = p.file
        ? `form-data; name="${p.name}"; filename="${path.basename(p.file)}"`
        : `form-data; name="${p.name}"`;
      const type = p.file ? 'application/octet-stream' : 'text/plain; charset=utf-8';
      const head = Buffer.from(
        `--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: ${type}\r\n\r\n`,
      );
      if (p.file) return { head, file: p.file, size: fs.statSync(p.file).size };
      const value = Buffer.from(p.value ?? '');
      return { head, value, size: value.length };
    });
    const tail = Buffer.from(`--${boundary}--\r\n`);
    const total = pieces.reduce((n, p) => n + p.head.length + p.size + 2, tail.length);

    return new Promise<T>((resolve, reject) => {
      const lib = target.protocol === 'https:' ? https : http;
      const req = lib.request(target, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.profile.token}`,
          accept: 'application/json',
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': total,
        },
        timeout: this.timeoutMs,
      });
      let sent = 0;
      const count = (n: number) => {
        sent += n;
        onProgress?.(sent, total);
      };
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(unreachable(this.profile.url, err)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(parseResponse<T>(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', (err) => reject(unreachable(this.profile.url, err)));
      });

      const write = (buf: Buffer) =>
        new Promise<void>((ok) => {
          if (req.write(buf)) ok();
          else req.once('drain', ok);
        }).then(() => count(buf.length));

      const send = async () => {
        for (const p of pieces) {
          await write(p.head);
          if (p.value) await write(p.value);
          if (p.file) {
            for await (const chunk of fs.createReadStream(p.file, { highWaterMark: 256 * 1024 })) {
              await write(chunk as Buffer);
            }
          }
          await write(Buffer.from('\r\n'));
        }
        await write(tail);
        req.end();
      };
      send().catch((err: unknown) => req.destroy(err instanceof Error ? err : new Error(String(err))));
    });
  }
}

function unreachable(url: string, err: unknown): CliFailure {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code ?? (err as Error).name;
  const detail =
    NETWORK_CODES.has(code ?? '') || code === 'TimeoutError'
      ? code
      : (cause?.message ?? (err as Error).message);
  return new CliFailure(
    'E_CLI_UNREACHABLE',
    `cannot reach the controller at ${url} (${detail})`,
    EXIT.unreachable,
  );
}

function parseResponse<T>(status: number, text: string): T {
  let body: unknown;
  try {
    body = text.length ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (status >= 200 && status < 300) {
    if (text.length && body === undefined) {
      throw new CliFailure(
        'E_CLI_RESPONSE',
        `the controller answered ${status} with a body that is not JSON`,
        EXIT.error,
        status,
      );
    }
    return body as T;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : 'E_CLI_RESPONSE';
  const message =
    typeof error?.message === 'string' ? error.message : `the controller answered HTTP ${status}`;
  throw new CliFailure(code, message, exitCodeForStatus(status), status);
}
