import fs from 'node:fs';
import path from 'node:path';
import type YAML from 'yaml';
import type { z } from 'zod';
import { PerchError } from './errors';
import { safeJsonParse } from './decode';

// The yaml package (72 modules) is loaded only when a .yaml/.yml file is read: most processes read
// JSON or no file at all, and an idle agent should not carry it (test/bench/agent.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadYaml = () => require('yaml') as typeof YAML;

/**
 * Configuration is loaded once per program: defaults, then a JSON or YAML file, then `PERCH_*`
 * environment variables, then command-line flags (later wins). The merged object is validated in
 * one pass so that every error is reported at once with its path and where the value came from,
 * then deep-frozen.
 */
export interface LoadConfigOptions<S extends z.ZodType> {
  schema: S;
  /** Lowest precedence. */
  defaults?: Record<string, unknown>;
  /** Path of a .json, .yaml or .yml file; missing is an error only when `fileRequired`. */
  file?: string | undefined;
  fileRequired?: boolean;
  /** The environment to read (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  /** Environment variable -> dotted config path, e.g. { PERCH_HTTP_PORT: 'http.port' }. */
  envMap?: Record<string, string>;
  /** Dotted config path -> value, from parsed command-line flags; undefined values are ignored. */
  flags?: Record<string, unknown>;
  /** Size limit for the config file. */
  maxFileBytes?: number;
}

type Source = 'default' | 'file' | 'env' | 'flag';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const [i, key] of keys.entries()) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      throw new PerchError('E_CONFIG_INVALID', `config path ${dotted} uses a forbidden key`);
    }
    if (i === keys.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (!isPlainObject(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** Environment strings become numbers, booleans, arrays or objects when they read as JSON. */
function parseEnvValue(raw: string): unknown {
  const t = raw.trim();
  if (/^-?\d+(\.\d+)?$/.test(t) || t === 'true' || t === 'false' || t.startsWith('[') || t.startsWith('{')) {
    const parsed = safeJsonParse(t, { maxBytes: 64 * 1024 });
    if (parsed.ok) return parsed.value;
  }
  return raw;
}

export function readConfigFile(file: string, maxBytes = 1024 * 1024): Record<string, unknown> {
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (stat.size > maxBytes)
      throw new PerchError('E_CONFIG_FILE', `config file ${file} is larger than ${maxBytes} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof PerchError) throw err;
    throw new PerchError('E_CONFIG_FILE', `cannot read config file ${file}: ${(err as Error).message}`, {
      file,
    });
  }
  let value: unknown;
  const ext = path.extname(file).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') {
    try {
      value = loadYaml().parse(text, { maxAliasCount: 100, uniqueKeys: true });
    } catch (err) {
      throw new PerchError(
        'E_CONFIG_FILE',
        `config file ${file} is not valid YAML: ${(err as Error).message}`,
        { file },
      );
    }
    // YAML can still carry __proto__ keys: round-trip through the safe JSON parser.
    const safe = safeJsonParse(JSON.stringify(value ?? {}), { maxBytes: maxBytes * 4 });
    if (!safe.ok)
      throw new PerchError('E_CONFIG_FILE', `config file ${file}: ${safe.error.message}`, { file });
    value = safe.value;
  } else {
    const parsed = safeJsonParse(text, { maxBytes });
    if (!parsed.ok)
      throw new PerchError('E_CONFIG_FILE', `config file ${file}: ${parsed.error.message}`, { file });
    value = parsed.value;
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value))
    throw new PerchError('E_CONFIG_FILE', `config file ${file} must hold an object at the top`);
  return value;
}

export interface ConfigIssue {
  path: string;
  message: string;
  source: Source;
}

/** Loads, merges, validates and freezes. Throws one E_CONFIG_INVALID listing every issue. */
export function loadConfig<S extends z.ZodType>(options: LoadConfigOptions<S>): Readonly<z.infer<S>> {
  const env = options.env ?? process.env;
  const origins = new Map<string, Source>();
  const note = (obj: Record<string, unknown>, src: Source, prefix = '') => {
    for (const [k, v] of Object.entries(obj)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (isPlainObject(v)) note(v, src, p);
      else origins.set(p, src);
    }
  };

  let merged: Record<string, unknown> = {};
  if (options.defaults) {
    merged = deepMerge(merged, options.defaults);
    note(options.defaults, 'default');
  }
  if (options.file) {
    if (fs.existsSync(options.file) || options.fileRequired) {
      const fromFile = readConfigFile(options.file, options.maxFileBytes);
      merged = deepMerge(merged, fromFile);
      note(fromFile, 'file');
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, dotted] of Object.entries(options.envMap ?? {})) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(fromEnv, dotted, parseEnvValue(raw));
  }
  merged = deepMerge(merged, fromEnv);
  note(fromEnv, 'env');
  const fromFlags: Record<string, unknown> = {};
  for (const [dotted, value] of Object.entries(options.flags ?? {})) {
    if (value !== undefined) setPath(fromFlags, dotted, value);
  }
  merged = deepMerge(merged, fromFlags);
  note(fromFlags, 'flag');

  const parsed = options.schema.safeParse(merged);
  if (!parsed.success) {
    const envByPath = new Map(Object.entries(options.envMap ?? {}).map(([k, v]) => [v, k]));
    const issues: ConfigIssue[] = parsed.error.issues.map((issue) => {
      const p = issue.path.map(String).join('.') || '(root)';
      const source = origins.get(p) ?? 'default';
      return { path: p, message: issue.message, source };
    });
    const lines = issues.map((i) => {
      const where = i.source === 'env' && envByPath.has(i.path) ? `env ${envByPath.get(i.path)}` : i.source;
      return `${i.path}: ${i.message} (from ${where})`;
    });
    throw new PerchError('E_CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`, { issues });
  }
  return deepFreeze(parsed.data) as Readonly<z.infer<S>>;
}
