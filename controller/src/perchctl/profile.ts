import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { safeJsonParse } from '@perch/shared';
import { CliFailure, EXIT } from './failure';

/** Where perchctl talks to, and as whom. */
export interface Profile {
  url: string;
  token: string;
}

/** `$PERCHCTL_CONFIG`, else `$XDG_CONFIG_HOME/perch/perchctl.json`, else `~/.config/perch/perchctl.json`. */
export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PERCHCTL_CONFIG) return path.resolve(env.PERCHCTL_CONFIG);
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'perch', 'perchctl.json');
}

export function readProfile(env: NodeJS.ProcessEnv = process.env): Partial<Profile> {
  const file = profilePath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliFailure('E_CLI_CONFIG', `cannot read ${file}: ${(err as Error).message}`, EXIT.error);
  }
  const parsed = safeJsonParse(text, { maxBytes: 64 * 1024 });
  if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) {
    throw new CliFailure('E_CLI_CONFIG', `${file} is not a perchctl login file`, EXIT.error);
  }
  const v = parsed.value as Record<string, unknown>;
  return {
    ...(typeof v.url === 'string' ? { url: v.url } : {}),
    ...(typeof v.token === 'string' ? { token: v.token } : {}),
  };
}

/** Writes the login file with mode 0600 (its folder 0700), atomically. */
export function writeProfile(profile: Profile, env: NodeJS.ProcessEnv = process.env): string {
  const file = profilePath(env);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return file;
}

/** Flags win over PERCH_URL / PERCH_TOKEN, which win over the login file. */
export function resolveProfile(
  flags: { url?: string; token?: string },
  env: NodeJS.ProcessEnv = process.env,
): Profile {
  const stored = readProfile(env);
  const url = flags.url ?? env.PERCH_URL ?? stored.url;
  const token = flags.token ?? env.PERCH_TOKEN ?? stored.token;
  if (!url || !token) {
    throw new CliFailure('E_CLI_NOT_LOGGED_IN', 'no controller URL or token configured', EXIT.auth);
  }
  return { url: normaliseUrl(url), token };
}

export function normaliseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliFailure('E_CLI_USAGE', `not a URL: ${url}`, EXIT.usage);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliFailure('E_CLI_USAGE', `the controller URL must be http or https: ${url}`, EXIT.usage);
  }
  return parsed.toString().replace(/\/+$/, '');
}
