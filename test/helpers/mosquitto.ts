import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports';

export interface MosquittoOptions {
  /** Allow clients without credentials (default false: Perch never runs an anonymous broker). */
  allowAnonymous?: boolean;
  /** username -> password, written with mosquitto_passwd. */
  users?: Record<string, string>;
  /** Contents of an ACL file (mosquitto acl_file syntax). */
  acl?: string;
  /** Keep retained messages and sessions across restart (default true). */
  persistence?: boolean;
  /** Extra lines appended to the generated config (listener options, plugins ...). */
  extraConfig?: string[];
  /** Use this config file instead of generating one; `{{PORT}}` and `{{DIR}}` are substituted. */
  configTemplate?: string;
  /** Port to listen on; default a free one from the OS. */
  port?: number;
}

/**
 * A private Mosquitto for one test file: its own port, config, password file, ACL and persistence
 * folder, so tests can stop, restart and reconfigure it without touching the machine's broker.
 */
export class TestMosquitto {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly configFile: string,
  ) {}

  static async start(options: MosquittoOptions = {}): Promise<TestMosquitto> {
    const port = options.port ?? (await freePort());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-mosquitto-'));
    const configFile = path.join(dir, 'mosquitto.conf');
    let config: string;
    if (options.configTemplate) {
      config = fs
        .readFileSync(options.configTemplate, 'utf8')
        .replaceAll('{{PORT}}', String(port))
        .replaceAll('{{DIR}}', dir);
    } else {
      const lines = [
        'per_listener_settings false',
        // As root, mosquitto would switch to its own user and lose access to this private folder.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        `listener ${port} 127.0.0.1`,
        `allow_anonymous ${options.allowAnonymous ? 'true' : 'false'}`,
        `persistence ${options.persistence === false ? 'false' : 'true'}`,
        `persistence_location ${dir}/`,
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information',
        'connection_messages true',
      ];
      if (options.users) {
        const passwd = path.join(dir, 'passwd');
        fs.writeFileSync(passwd, '');
        for (const [user, password] of Object.entries(options.users)) {
          execFileSync('mosquitto_passwd', ['-b', passwd, user, password]);
        }
        lines.push(`password_file ${passwd}`);
      }
      if (options.acl !== undefined) {
        const acl = path.join(dir, 'acl');
        fs.writeFileSync(acl, options.acl);
        lines.push(`acl_file ${acl}`);
      }
      lines.push(...(options.extraConfig ?? []));
      config = `${lines.join('\n')}\n`;
    }
    fs.writeFileSync(configFile, config);
    const broker = new TestMosquitto(port, dir, configFile);
    await broker.launch();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** What the broker printed, for assertions and for debugging a failed test. */
  output(): string {
    return this.log;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async launch(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-200_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}:\n${this.log}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForPort(this.port), exited]);
  }

  /** Stops the broker (SIGTERM, so it writes its persistence file), keeping port and state. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
    this.child = undefined;
  }

  /** Kills the broker without letting it save anything. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    this.child = undefined;
  }

  /** Starts it again on the same port with the same config and persistence folder. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Re-reads the password and ACL files (SIGHUP). */
  reload(): void {
    this.child?.kill('SIGHUP');
  }

  /** Replaces the ACL file and reloads. */
  setAcl(acl: string): void {
    fs.writeFileSync(path.join(this.dir, 'acl'), acl);
    this.reload();
  }

  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
