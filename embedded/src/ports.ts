import net from 'node:net';
import { PerchError } from '@perch/shared';

/** True when something already listens on host:port. */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'EADDRINUSE' || err.code === 'EACCES'),
    );
    server.listen(port, host, () => server.close(() => resolve(false)));
  });
}

export interface PortChoice {
  port: number;
  /** Set when the default was taken and another port was chosen. */
  fallbackFrom?: number;
}

/**
 * A port the user asked for (environment variable set) must be free: a taken one is an error that
 * names the variable. The default may be taken on a machine that already runs a broker or a web
 * server; then the next free port above it is used and the caller says so.
 */
export async function choosePort(
  envName: string,
  env: NodeJS.ProcessEnv,
  defaultPort: number,
  host = '127.0.0.1',
): Promise<PortChoice> {
  const raw = env[envName];
  if (raw !== undefined && raw !== '') {
    const port = Number(raw);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new PerchError('E_CONFIG_INVALID', `${envName}=${raw} is not a port number (0-65535)`);
    }
    if (port !== 0 && (await portInUse(port, host))) {
      throw new PerchError('E_PORT_IN_USE', `port ${port} (${envName}) is already in use on ${host}`, {
        port,
        envName,
      });
    }
    return { port };
  }
  for (let port = defaultPort; port < defaultPort + 50 && port <= 65535; port++) {
    if (!(await portInUse(port, host)))
      return port === defaultPort ? { port } : { port, fallbackFrom: defaultPort };
  }
  throw new PerchError(
    'E_PORT_IN_USE',
    `ports ${defaultPort}-${defaultPort + 49} are all in use; set ${envName}`,
    { envName },
  );
}
