import net from 'node:net';
import { PerchError, type Logger, type PipelineConfig } from '@perch/shared';
import { failedStats } from '../pipeline/failed-stats';
import type { PipelineStats } from '../pipeline/types';
import { parseSourceConfig, type SourceConfig } from '../sources/config';
import type { AgentConfig } from './config';
import type { Counters } from './counters';
import type { ActiveModel, PipelineHost } from './pipelines-port';

/** `remotePipelines` of the agent config: what pipelines from the desired state may do on this device. */
export type RemotePipelinePolicy = AgentConfig['remotePipelines'];

/** Extensions a folder source from the desired state may read without `allowFileSources`. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.avif',
]);

/**
 * ffmpeg generators that read nothing: one of them, with plain options, is a test pattern. Any other
 * graph may read files (`movie=`, `drawtext=textfile=`, `life=filename=`), fetch URLs (`movie=http://`)
 * or load plugin libraries (`ladspa=`), so it counts as a command.
 */
const LAVFI_GENERATORS = [
  'testsrc',
  'testsrc2',
  'smptebars',
  'smptehdbars',
  'rgbtestsrc',
  'yuvtestsrc',
  'pal75bars',
  'pal100bars',
  'colorspectrum',
  'color',
  'mandelbrot',
  'allrgb',
  'allyuv',
  'nullsrc',
  'sine',
  'anoisesrc',
  'anullsrc',
];
const PLAIN_GENERATOR = new RegExp(`^(?:${LAVFI_GENERATORS.join('|')})(?:=[A-Za-z0-9_.:=#/+-]*)?$`);

/** Whether an ffmpeg lavfi graph is a single generator from the list above with plain options. */
export function isPlainGenerator(graph: string): boolean {
  return PLAIN_GENERATOR.test(graph);
}

const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/**
 * Whether `dir` is `root` or below it, compared as written (absolute, no `.` or `..` segments; symbolic
 * links are not resolved).
 */
export function isUnder(dir: string, root: string): boolean {
  if (!dir.startsWith('/') || DOT_SEGMENT.test(dir)) return false;
  const clean = (p: string) => p.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  const d = clean(dir);
  const r = clean(root);
  return r === '/' || d === r || d.startsWith(`${r}/`);
}

/**
 * The host of a URL, once the WHATWG parser (Node, fetch) and a plain reading of the text (as ffmpeg
 * splits it) agree on it; undefined when they do not (backslashes, several `@`, encoded names).
 */
export function urlHost(url: string): string | undefined {
  const raw =
    /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#@\\\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^/?#@\\\s:[\]]+)(?::\d{1,5})?(?:[/?#]|$)/.exec(
      url,
    );
  if (!raw?.[1]) return undefined;
  let parsed: string;
  try {
    parsed = new URL(url).hostname;
  } catch {
    return undefined;
  }
  const strip = (h: string) => h.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const host = strip(raw[1]);
  return host === strip(parsed) ? host.replace(/\.$/, '') : undefined;
}

/** Whether `host` (from `urlHost`) matches one of the patterns: a name, `*.name`, an IP or a CIDR. */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const version = net.isIP(host);
  for (const raw of patterns) {
    const pattern = raw.toLowerCase();
    if (version !== 0) {
      const [address = '', bits] = pattern.split('/');
      const family = net.isIP(address);
      if (family === 0) continue;
      const list = new net.BlockList();
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(address, type);
      else list.addSubnet(address, Number(bits), type);
      if (list.check(host, version === 6 ? 'ipv6' : 'ipv4')) return true;
    } else if (pattern.startsWith('*.')) {
      if (host.endsWith(pattern.slice(1))) return true;
    } else if (host === pattern) {
      return true;
    }
  }
  return false;
}

function refuse(id: string, message: string, details: Record<string, unknown>): PerchError {
  return new PerchError('E_PIPELINE_SOURCE_NOT_ALLOWED', `pipeline ${id}: ${message}`, details);
}

function checkUrl(id: string, url: string, policy: RemotePipelinePolicy): PerchError | undefined {
  const allowed = policy.allowedUrlHosts;
  if (allowed === undefined) return undefined;
  const host = urlHost(url);
  if (host !== undefined && hostAllowed(host, allowed)) return undefined;
  return refuse(
    id,
    host === undefined
      ? 'the source URL has a host this device cannot check'
      : `URL host ${host} is not in remotePipelines.allowedUrlHosts`,
    { setting: 'remotePipelines.allowedUrlHosts', ...(host !== undefined ? { host } : {}) },
  );
}

function checkSource(id: string, source: SourceConfig, policy: RemotePipelinePolicy): PerchError | undefined {
  const command = (what: string) =>
    policy.allowCommandSources
      ? undefined
      : refuse(id, `${what} is not allowed from the desired state`, {
          kind: source.kind,
          setting: 'remotePipelines.allowCommandSources',
        });
  const file = (what: string) =>
    policy.allowFileSources
      ? undefined
      : refuse(id, `${what} is not allowed from the desired state`, {
          kind: source.kind,
          setting: 'remotePipelines.allowFileSources',
        });
  switch (source.kind) {
    case 'sensor-command':
      return command('a sensor-command source');
    case 'lavfi':
      return isPlainGenerator(source.graph) ? undefined : command('a lavfi graph other than one generator');
    case 'file':
    case 'sensor-file':
      return file(`a ${source.kind} source`);
    case 'audio':
      if (source.input.type === 'file') return file('an audio file input');
      if (source.input.type === 'lavfi' && !isPlainGenerator(source.input.graph))
        return command('a lavfi graph other than one generator');
      return undefined;
    case 'folder': {
      const roots = policy.allowedFolders;
      if (roots !== undefined && !roots.some((root) => isUnder(source.path, root))) {
        return refuse(id, `folder ${source.path} is not in remotePipelines.allowedFolders`, {
          kind: source.kind,
          setting: 'remotePipelines.allowedFolders',
          path: source.path,
        });
      }
      const other = source.extensions.filter((e) => !IMAGE_EXTENSIONS.has(e));
      if (other.length > 0 && !policy.allowFileSources) {
        return refuse(id, `a folder source reading ${other.join(', ')} files is not allowed`, {
          kind: source.kind,
          setting: 'remotePipelines.allowFileSources',
          extensions: other,
        });
      }
      return undefined;
    }
    case 'rtsp':
    case 'mjpeg':
    case 'snapshot-url':
      return checkUrl(id, source.url, policy);
    case 'v4l2':
    case 'sensor-mqtt':
      return undefined;
  }
}

/**
 * Checks one pipeline of the desired state against the device's policy; undefined when it may run. A
 * source that does not even validate is let through: the pipeline host refuses it (E_CONFIG_INVALID)
 * without running anything.
 */
export function checkRemotePipeline(
  pipeline: PipelineConfig,
  policy: RemotePipelinePolicy,
): PerchError | undefined {
  let source: SourceConfig;
  try {
    source = parseSourceConfig(pipeline.source);
  } catch {
    return undefined;
  }
  return checkSource(pipeline.id, source, policy);
}

export interface Screened {
  allowed: PipelineConfig[];
  refused: Map<string, PerchError>;
}

/** Splits the desired state's pipelines into those the policy allows and those it refuses (by id). */
export function screenRemotePipelines(
  pipelines: readonly PipelineConfig[],
  policy: RemotePipelinePolicy,
): Screened {
  const allowed: PipelineConfig[] = [];
  const refused = new Map<string, PerchError>();
  for (const p of pipelines) {
    const error = checkRemotePipeline(p, policy);
    if (error) refused.set(p.id, error);
    else allowed.push(p);
  }
  return { allowed, refused };
}

/**
 * Wraps the pipeline host so that pipelines refused by the policy show in `stats()` (hence in the
 * reported state, telemetry and Home Assistant) as failed with their code, while they never reach the
 * host. A refusal is logged and counted once, when it first appears for that pipeline and reason.
 */
export class RefusedPipelinesHost implements PipelineHost {
  private refused = new Map<string, { error: PerchError; at: number }>();
  readonly snapshot?: (id: string) => Promise<string | undefined>;

  constructor(
    private readonly inner: PipelineHost,
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly now: () => number,
  ) {
    if (inner.snapshot) this.snapshot = (id) => inner.snapshot!(id);
  }

  /** Replaces the set of refused pipelines (called with every desired state the agent accepts). */
  setRefused(refused: ReadonlyMap<string, PerchError>): void {
    const next = new Map<string, { error: PerchError; at: number }>();
    for (const [id, error] of refused) {
      const before = this.refused.get(id);
      if (before && before.error.message === error.message) {
        next.set(id, before);
        continue;
      }
      next.set(id, { error, at: this.now() });
      this.counters.error(error.code);
      this.logger.warn('pipeline from the desired state refused by the device policy', {
        code: error.code,
        pipeline: id,
        err: error.message,
        ...(error.details as Record<string, unknown>),
      });
    }
    this.refused = next;
  }

  refusedIds(): string[] {
    return [...this.refused.keys()];
  }

  apply(pipelines: readonly PipelineConfig[], models: ReadonlyMap<string, ActiveModel>): Promise<void> {
    return this.inner.apply(pipelines, models);
  }

  restart(id: string): Promise<boolean> {
    return this.inner.restart(id);
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  /** The host's pipelines, then the refused ones the host does not (or no longer) run. */
  stats(): readonly PipelineStats[] {
    const running = this.inner.stats();
    const ids = new Set(running.map((s) => s.id));
    const refused = [...this.refused]
      .filter(([id]) => !ids.has(id))
      .map(([id, r]) => failedStats(id, r.error, r.at));
    return refused.length ? [...running, ...refused] : running;
  }
}
