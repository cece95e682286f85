import { ApiClient } from './client';
import type { Output } from './output';
import { resolveProfile } from './profile';

/** What every command gets: where to write, the environment, and a client built on demand. */
export interface CommandContext {
  out: Output;
  env: NodeJS.ProcessEnv;
  /** Global --url / --token flags. */
  flags: { url?: string; token?: string; timeoutMs?: number };
  client(): ApiClient;
}

export function makeContext(
  out: Output,
  env: NodeJS.ProcessEnv,
  flags: CommandContext['flags'],
): CommandContext {
  let client: ApiClient | undefined;
  return {
    out,
    env,
    flags,
    client() {
      client ??= new ApiClient(resolveProfile(flags, env), flags.timeoutMs);
      return client;
    },
  };
}
