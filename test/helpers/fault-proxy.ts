import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the proxy does to a response whose request path contains a rule's key.
 * - `flip`: the whole body with one byte changed (same length), as a man in the middle would.
 * - `trickle`: the real status and headers, then `bytesPerTick` bytes of the body every `tickMs`.
 * - `endless`: status 200 without a length, then the body followed by zeros, `bytesPerTick` every
 *   `tickMs`, never ending.
 * - `flood`: status 200 without a length, then zeros as fast as the socket takes them, never ending.
 */
export type Fault =
  | { kind: 'flip' }
  | { kind: 'trickle'; bytesPerTick: number; tickMs: number }
  | { kind: 'endless'; bytesPerTick: number; tickMs: number }
  | { kind: 'flood' };

export interface FaultHits {
  /** Requests the rule applied to. */
  requests: number;
  /** Body bytes the proxy sent under the rule. */
  bytes: number;
}

/**
 * A small HTTP reverse proxy for tests: everything goes through to `upstream` unchanged, except
 * responses to paths that contain the key of a fault rule. It can be started before the upstream
 * exists (the controller's public URL must be known before the controller starts).
 */
export class FaultProxy {
  private upstream: URL | undefined;
  private readonly rules = new Map<string, Fault>();
  private readonly counts = new Map<string, FaultHits>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly server: http.Server) {}

  static async start(upstream?: string): Promise<FaultProxy> {
    const server = http.createServer();
    const proxy = new FaultProxy(server);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => proxy.handle(req, res));
    if (upstream) proxy.setUpstream(upstream);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  setUpstream(url: string): void {
    this.upstream = new URL(url);
  }

  /** Applies `fault` to every response whose request path contains `pathPart`. */
  fault(pathPart: string, fault: Fault): void {
    this.rules.set(pathPart, fault);
    if (!this.counts.has(pathPart)) this.counts.set(pathPart, { requests: 0, bytes: 0 });
  }

  clear(pathPart: string): void {
    this.rules.delete(pathPart);
  }

  hits(pathPart: string): FaultHits {
    return { ...(this.counts.get(pathPart) ?? { requests: 0, bytes: 0 }) };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const upstream = this.upstream;
    if (!upstream) {
      res.writeHead(502).end('no upstream yet');
      return;
    }
    const path = req.url ?? '/';
    const match = [...this.rules].find(([part]) => path.includes(part));
    const headers = { ...req.headers, host: upstream.host };
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers },
      (up) => {
        if (!match) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const [part, fault] = match;
        const hits = this.counts.get(part)!;
        hits.requests++;
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => this.faulty(fault, up, Buffer.concat(chunks), res, hits));
      },
    );
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  }

  private faulty(
    fault: Fault,
    up: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
    hits: FaultHits,
  ): void {
    const status = up.statusCode ?? 502;
    const unlimited = { ...up.headers };
    delete unlimited['content-length'];
    delete unlimited['content-range'];
    delete unlimited['accept-ranges'];
    const send = (data: Buffer) => {
      hits.bytes += data.length;
      return res.write(data);
    };
    const drip = (next: () => Buffer | undefined, tickMs: number) => {
      const timer = setInterval(() => {
        const data = next();
        if (data === undefined) {
          clearInterval(timer);
          this.timers.delete(timer);
          res.end();
        } else send(data);
      }, tickMs);
      this.timers.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        this.timers.delete(timer);
      });
    };
    switch (fault.kind) {
      case 'flip': {
        const copy = Buffer.from(body);
        if (copy.length > 0) copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 0xff;
        res.writeHead(status, up.headers);
        send(copy);
        res.end();
        return;
      }
      case 'trickle': {
        res.writeHead(status, up.headers);
        let at = 0;
        drip(() => {
          if (at >= body.length) return undefined;
          const part = body.subarray(at, at + fault.bytesPerTick);
          at += part.length;
          return part;
        }, fault.tickMs);
        return;
      }
      case 'endless': {
        res.writeHead(200, unlimited);
        let at = 0;
        drip(() => {
          const part = Buffer.alloc(fault.bytesPerTick);
          if (at < body.length) body.copy(part, 0, at, at + fault.bytesPerTick);
          at += part.length;
          return part;
        }, fault.tickMs);
        return;
      }
      case 'flood': {
        res.writeHead(200, unlimited);
        const zeros = Buffer.alloc(64 * 1024);
        const pump = () => {
          while (!res.destroyed && send(zeros));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
    }
  }
}
