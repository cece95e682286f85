import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { PerchError, type Clock, type Logger } from '@perch/shared';
import { noKill, type KillPoint } from './kill-hook';

export interface DownloadLimits {
  /** The whole download, resumed parts included, must finish within this. */
  deadlineMs: number;
  /** Below this many bytes per second over one window the download is aborted (and resumed later). */
  minBytesPerSec: number;
  /** Length of the throughput window. */
  windowMs: number;
  /** fsync the partial file after this many new bytes, so a resume after a power cut loses little. */
  syncEveryBytes: number;
}

export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = {
  deadlineMs: 30 * 60_000,
  minBytesPerSec: 1024,
  windowMs: 30_000,
  syncEveryBytes: 1024 * 1024,
};

export interface DownloadRequest {
  url: string;
  /** Durable partial file; the complete file is left here. */
  partFile: string;
  /** Signed length: never more bytes than this are accepted. */
  length: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number) => void;
}

export interface DownloadResult {
  file: string;
  sha256: string;
  /** Bytes fetched over the network in this call (less than `length` after a resume). */
  fetched: number;
  resumedFrom: number;
}

/**
 * A resumable, bounded HTTP downloader. It resumes with `Range` from the durable partial file, whose
 * bytes are re-hashed on start so the final digest covers the whole file; it never accepts more than the
 * signed length, and aborts on an overall deadline or a throughput below the minimum. Data is streamed
 * to disk, so an endless response costs no memory.
 */
export class Downloader {
  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly limits: DownloadLimits = DEFAULT_DOWNLOAD_LIMITS,
    private readonly killPoint: KillPoint = noKill,
  ) {}

  async download(req: DownloadRequest): Promise<DownloadResult> {
    fs.mkdirSync(path.dirname(req.partFile), { recursive: true });
    const hash = crypto.createHash('sha256');
    let have = 0;
    try {
      const stat = fs.statSync(req.partFile);
      if (stat.size > req.length) fs.truncateSync(req.partFile, 0);
      else {
        for await (const chunk of fs.createReadStream(req.partFile)) hash.update(chunk as Buffer);
        have = stat.size;
      }
    } catch {
      // no partial file yet
    }
    const resumedFrom = have;
    if (have === req.length) {
      return { file: req.partFile, sha256: hash.digest('hex'), fetched: 0, resumedFrom };
    }
    const fetched = await this.fetchInto(req, have, hash);
    return { file: req.partFile, sha256: fetched.hash.digest('hex'), fetched: fetched.bytes, resumedFrom };
  }

  private fetchInto(
    req: DownloadRequest,
    offset: number,
    initialHash: crypto.Hash,
  ): Promise<{ hash: crypto.Hash; bytes: number }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let hash = initialHash;
      let size = offset;
      let fetchedBytes = 0;
      let windowStart = size;
      let unsynced = 0;
      let fd: number | undefined;
      const active: { request?: http.ClientRequest } = {};

      const cleanup = () => {
        this.clock.clearTimeout(deadline);
        this.clock.clearInterval(throughput);
        req.signal?.removeEventListener('abort', onAbort);
        if (fd !== undefined) {
          try {
            fs.fsyncSync(fd);
          } catch {
            // best effort: the partial is re-hashed on the next start anyway
          }
          fs.closeSync(fd);
          fd = undefined;
        }
      };
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        active.request?.destroy();
        cleanup();
        if (err) reject(err);
        else resolve({ hash, bytes: fetchedBytes });
      };
      const onAbort = () => finish(new PerchError('E_DOWNLOAD_DEADLINE', 'download aborted'));
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const deadline = this.clock.setTimeout(
        () =>
          finish(
            new PerchError(
              'E_DOWNLOAD_DEADLINE',
              `download did not finish within ${this.limits.deadlineMs} ms`,
              {
                received: size,
                length: req.length,
              },
            ),
          ),
        this.limits.deadlineMs,
      );
      const throughput = this.clock.setInterval(() => {
        const rate = ((size - windowStart) * 1000) / this.limits.windowMs;
        windowStart = size;
        if (rate < this.limits.minBytesPerSec) {
          finish(
            new PerchError('E_DOWNLOAD_TOO_SLOW', `download below ${this.limits.minBytesPerSec} B/s`, {
              rate: Math.round(rate),
              received: size,
            }),
          );
        }
      }, this.limits.windowMs);

      const headers: Record<string, string> = { ...req.headers };
      if (offset > 0) headers.Range = `bytes=${offset}-`;
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        finish(new PerchError('E_DOWNLOAD_HTTP', `bad download URL ${req.url}`));
        return;
      }
      const lib = url.protocol === 'https:' ? https : http;
      const request = lib.get(url, { headers }, (res) => {
        const status = res.statusCode ?? 0;
        let start = offset;
        if (status === 206 && offset > 0) {
          const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== offset) {
            res.resume();
            finish(new PerchError('E_DOWNLOAD_HTTP', 'server answered a different range than asked'));
            return;
          }
        } else if (status === 200) {
          // The server ignored Range (or we asked for none): start over from byte 0.
          start = 0;
          if (offset > 0) {
            hash = crypto.createHash('sha256');
            size = 0;
            windowStart = 0;
          }
        } else if (status === 416 && offset > 0) {
          // Our partial is at least as long as what the server has; let verification decide.
          res.resume();
          finish();
          return;
        } else {
          res.resume();
          finish(new PerchError('E_DOWNLOAD_HTTP', `download answered HTTP ${status}`, { status }));
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && start + declared > req.length) {
          res.resume();
          finish(
            new PerchError(
              'E_DOWNLOAD_TOO_LARGE',
              `server announces ${start + declared} bytes, signed ${req.length}`,
            ),
          );
          return;
        }
        try {
          fd = fs.openSync(req.partFile, start === 0 ? 'w' : 'a', 0o600);
        } catch (err) {
          res.resume();
          finish(new PerchError('E_DOWNLOAD_HTTP', `cannot write ${req.partFile}: ${String(err)}`));
          return;
        }
        res.on('data', (chunk: Buffer) => {
          if (settled || fd === undefined) return;
          if (size + chunk.length > req.length) {
            finish(new PerchError('E_DOWNLOAD_TOO_LARGE', `more than the signed ${req.length} bytes`));
            return;
          }
          fs.writeSync(fd, chunk);
          hash.update(chunk);
          size += chunk.length;
          fetchedBytes += chunk.length;
          unsynced += chunk.length;
          if (unsynced >= this.limits.syncEveryBytes) {
            fs.fsyncSync(fd);
            unsynced = 0;
          }
          req.onProgress?.(size, req.length);
          if (fetchedBytes === chunk.length) {
            fs.fsyncSync(fd);
            this.killPoint('download');
          }
        });
        res.on('end', () => {
          if (size < req.length) {
            finish(
              new PerchError('E_DOWNLOAD_HTTP', `connection ended after ${size} of ${req.length} bytes`),
            );
          } else finish();
        });
        res.on('error', (err) =>
          finish(new PerchError('E_DOWNLOAD_HTTP', `download failed: ${err.message}`)),
        );
        // A connection cut mid-body ends in 'close' without 'end' (or 'error') on some Node versions.
        res.on('close', () => {
          if (size < req.length) {
            finish(
              new PerchError('E_DOWNLOAD_HTTP', `connection closed after ${size} of ${req.length} bytes`),
            );
          } else finish();
        });
      });
      active.request = request;
      request.on('error', (err) =>
        finish(new PerchError('E_DOWNLOAD_HTTP', `download failed: ${err.message}`)),
      );
    });
  }
}
