import fs from 'node:fs';
import path from 'node:path';
import type * as TufJs from 'tuf-js';
import type { Updater } from 'tuf-js';
import type * as TufErrors from 'tuf-js/dist/error';
import { PerchError, type Clock, type Logger } from '@perch/shared';
import type { Counters } from './counters';
import { writeFileAtomic } from './fs-atomic';

/** A signed target, as the reconciler needs it. */
export interface ResolvedTarget {
  path: string;
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
  /** Where to download it (consistent-snapshot name). */
  url: string;
  /** tuf-js `TargetFile.verify`: length and every signed hash. Rejects on a mismatch. */
  verify(file: string): Promise<void>;
}

/** The seam the reconciler uses; tests can pass a fixed map of targets. */
export interface TargetResolver {
  /** Refreshes signed metadata (once per reconcile run) and looks the target up. */
  resolve(targetPath: string): Promise<ResolvedTarget>;
  /** Forget the refreshed metadata so that the next `resolve` refreshes again. */
  invalidate(): void;
  /** Headers for artifact downloads. */
  downloadHeaders(): Record<string, string>;
}

/*
 * tuf-js (with @tufjs/models, minimatch, make-fetch-happen's helpers) is loaded on first use: an agent
 * spends most of its life with no update to check, and loading it at start cost ~3 MB of RSS
 * (test/bench/agent.js). require() keeps it synchronous and the module cache shares it.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const loadTuf = () => require('tuf-js') as typeof TufJs;
const loadTufErrors = () => require('tuf-js/dist/error') as typeof TufErrors;
/* eslint-enable @typescript-eslint/no-require-imports */

function bearerFetcher(token: string, timeoutMs: number): TufJs.BaseFetcher {
  const { DownloadHTTPError } = loadTufErrors();
  class BearerFetcher extends loadTuf().BaseFetcher {
    override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
      const response = await fetch(url, {
        headers: { Authorization: `Bearer ${token}`, 'User-Agent': 'perch-agent' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        throw new DownloadHTTPError(`GET ${url} answered ${response.status}`, response.status);
      }
      return response.body as ReadableStream<Uint8Array<ArrayBuffer>>;
    }
  }
  return new BearerFetcher();
}

export interface TufClientOptions {
  metadataDir: string;
  /** The root pinned at enrollment; restores a truncated root.json. */
  enrolledRootFile: string;
  metadataBaseUrl: string;
  targetBaseUrl: string;
  token: string;
  clock: Clock;
  /** ms since the epoch: a device clock before this cannot judge expiry (no RTC, no NTP yet). */
  buildTime: number;
  fetchTimeoutMs?: number;
}

function isParsableJson(file: string): boolean {
  try {
    JSON.parse(fs.readFileSync(file, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * tuf-js `Updater` with the agent's needs around it: bearer-token fetches, a sane-clock check, and
 * recovery from metadata files that tuf-js wrote non-atomically and a power cut truncated (root falls
 * back to the enrolled root and walks forward again; other roles are simply fetched again).
 */
export class TufClient implements TargetResolver {
  private updater: Updater | undefined;

  constructor(
    private readonly options: TufClientOptions,
    private readonly logger: Logger,
    private readonly counters: Counters,
  ) {}

  /** Writes the enrolled root (enrollment calls this once). */
  static pinRoot(metadataDir: string, enrolledRootFile: string, root: unknown): void {
    const text = JSON.stringify(root);
    writeFileAtomic(enrolledRootFile, text, 0o600);
    writeFileAtomic(path.join(metadataDir, 'root.json'), text, 0o600);
  }

  repairMetadata(): void {
    const dir = this.options.metadataDir;
    fs.mkdirSync(dir, { recursive: true });
    const root = path.join(dir, 'root.json');
    if (!fs.existsSync(root) || !isParsableJson(root)) {
      if (fs.existsSync(root)) {
        this.counters.error('E_AGENT_STATE_CORRUPT');
        this.logger.warn('root.json unreadable; restoring the enrolled root', {
          code: 'E_AGENT_STATE_CORRUPT',
        });
      }
      writeFileAtomic(root, fs.readFileSync(this.options.enrolledRootFile), 0o600);
    }
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name);
      if (name === 'root.json' || !name.endsWith('.json')) continue;
      if (!isParsableJson(file)) {
        this.counters.error('E_AGENT_STATE_CORRUPT');
        this.logger.warn('dropping unreadable TUF metadata', { code: 'E_AGENT_STATE_CORRUPT', file: name });
        fs.rmSync(file, { force: true });
      }
    }
  }

  invalidate(): void {
    this.updater = undefined;
  }

  downloadHeaders(): Record<string, string> {
    return { Authorization: `Bearer ${this.options.token}` };
  }

  private async refreshed(): Promise<Updater> {
    if (this.updater) return this.updater;
    if (this.options.clock.now() < this.options.buildTime) {
      throw new PerchError(
        'E_UPDATE_UNTRUSTED_TIME',
        'the device clock is earlier than the agent build time',
        {
          now: this.options.clock.now(),
          buildTime: this.options.buildTime,
        },
      );
    }
    try {
      this.repairMetadata();
    } catch (err) {
      throw new PerchError('E_UPDATE_METADATA', `cannot prepare the TUF metadata folder: ${String(err)}`);
    }
    const { Updater } = loadTuf();
    const updater = new Updater({
      metadataDir: this.options.metadataDir,
      metadataBaseUrl: this.options.metadataBaseUrl,
      targetBaseUrl: this.options.targetBaseUrl,
      fetcher: bearerFetcher(this.options.token, this.options.fetchTimeoutMs ?? 30_000),
    });
    try {
      await updater.refresh();
    } catch (err) {
      throw mapTufError(err);
    }
    this.updater = updater;
    return updater;
  }

  async resolve(targetPath: string): Promise<ResolvedTarget> {
    const updater = await this.refreshed();
    let info;
    try {
      info = await updater.getTargetInfo(targetPath);
    } catch (err) {
      throw mapTufError(err);
    }
    if (!info)
      throw new PerchError('E_UPDATE_TARGET_UNKNOWN', `target ${targetPath} is not in the signed metadata`);
    const sha256 = info.hashes.sha256;
    if (!sha256) throw new PerchError('E_UPDATE_METADATA', `target ${targetPath} has no sha256`);
    const { dir, base } = path.posix.parse(info.path);
    const name = `${sha256}.${base}`;
    const rel = (dir ? `${dir}/${name}` : name).split('/').map(encodeURIComponent).join('/');
    const baseUrl = this.options.targetBaseUrl.replace(/\/+$/, '');
    const target = info;
    return {
      path: info.path,
      length: info.length,
      sha256,
      custom: (info.custom ?? {}) as Record<string, unknown>,
      url: `${baseUrl}/${rel}`,
      verify: async (file: string) => {
        try {
          await target.verify(fs.createReadStream(file));
        } catch (err) {
          throw new PerchError(
            'E_UPDATE_HASH_MISMATCH',
            `artifact does not match its signed target: ${String(err)}`,
          );
        }
      },
    };
  }
}

export function mapTufError(err: unknown): PerchError {
  if (err instanceof PerchError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/expired/i.test(message) || err instanceof loadTufErrors().ExpiredMetadataError) {
    return new PerchError('E_UPDATE_METADATA_EXPIRED', `signed metadata expired: ${message}`);
  }
  return new PerchError('E_UPDATE_METADATA', `signed metadata refresh failed: ${message}`, {
    error: err instanceof Error ? err.constructor.name : 'unknown',
  });
}
