import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../../test/helpers/fixtures';
import { tempDir } from '../../../test/helpers/tmp';

const INSTALL = path.join(REPO_ROOT, 'deploy', 'install-agent.sh');
const FORGET = path.join(REPO_ROOT, 'deploy', 'forget-enroll-token.sh');
const UNIT = path.join(REPO_ROOT, 'deploy', 'systemd', 'perch-agent.service');
/** The tools the script's functions use; everything else (node, npm, apt, systemctl) is a fake. */
const TOOLS = ['sed', 'head', 'cat', 'grep', 'chmod', 'chown', 'mv', 'rm', 'dirname'];

function which(tool: string): string {
  for (const dir of ['/usr/bin', '/bin'])
    if (fs.existsSync(path.join(dir, tool))) return path.join(dir, tool);
  throw new Error(`${tool} not found`);
}

/** A PATH of fakes (name -> sh body) plus the plain tools, and no real node. */
function fakePath(root: string, fakes: Record<string, string>): string {
  const tools = path.join(root, 'tools');
  const fake = path.join(root, 'fake');
  fs.mkdirSync(tools, { recursive: true });
  fs.mkdirSync(fake, { recursive: true });
  for (const t of TOOLS) fs.symlinkSync(which(t), path.join(tools, t));
  for (const [name, body] of Object.entries(fakes)) {
    fs.writeFileSync(path.join(fake, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return `${fake}:${tools}`;
}

/** Sources install-agent.sh under dash (Debian's /bin/sh) without installing, then runs `script`. */
function withFunctions(script: string, env: Record<string, string> = {}) {
  const r = spawnSync('/bin/sh', ['-c', `PERCH_INSTALL_SOURCE_ONLY=1 . "${INSTALL}"\n${script}`], {
    env: { PATH: '/usr/bin:/bin', ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('deploy/install-agent.sh', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir('perch-install-')));
  afterEach(() => tmp.cleanup());

  it.each([INSTALL, FORGET].map((f) => [path.basename(f), f]))(
    '%s parses under bash and dash',
    (_name, file) => {
      for (const shell of ['bash', 'dash']) {
        const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
        expect([shell, r.status, r.stderr]).toEqual([shell, 0, '']);
      }
    },
  );

  it.each([
    ['v20.19.0', true],
    ['v20.19.5', true],
    ['v21.0.0', true],
    ['v22.12.0', true],
    ['v100.1.0', true],
    ['20.19.2+dfsg-1', true],
    ['v20.18.3', false],
    ['v20.9.0', false],
    ['v18.19.0', false],
    ['18.19.0+dfsg-6~deb12u2', false],
    ['v22', false],
    ['unknown', false],
    ['', false],
  ])('node_version_ok %j: %s', (version, ok) => {
    expect(withFunctions(`node_version_ok "${version}"`).status).toBe(ok ? 0 : 1);
  });

  it("refuses Debian 12's Node 18 with instructions, without installing anything", () => {
    const log = path.join(tmp.dir, 'apt-get.log');
    const PATH = fakePath(tmp.dir, {
      node: 'echo v18.19.0',
      npm: 'echo 9.2.0',
      'apt-get': `echo "$@" >> ${log}`,
    });
    const r = withFunctions('ensure_node', { PATH });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Perch needs Node.js 20.19 or newer');
    expect(r.stderr).toContain('found: node v18.19.0');
    expect(r.stderr).toContain('https://github.com/nodesource/distributions');
    expect(r.stderr).toContain('https://nodejs.org/en/download');
    expect(r.stderr).not.toMatch(/curl[^\n]*\|\s*(sudo\s+)?(ba)?sh/);
    expect(fs.existsSync(log)).toBe(false);
  });

  it('accepts a new enough node and prints its path for the unit', () => {
    const PATH = fakePath(tmp.dir, { node: 'echo v22.12.0', npm: 'echo 10.9.0' });
    const r = withFunctions('ensure_node', { PATH });
    expect(r).toMatchObject({ status: 0, stdout: `${path.join(tmp.dir, 'fake', 'node')}\n` });
  });

  it('refuses a new node without npm', () => {
    const PATH = fakePath(tmp.dir, { node: 'echo v20.19.0' });
    const r = withFunctions('ensure_node', { PATH });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('but no npm');
  });

  it("installs the distribution's nodejs only when its version is new enough", () => {
    const fake = path.join(tmp.dir, 'fake');
    const log = path.join(tmp.dir, 'apt-get.log');
    const old = fakePath(path.join(tmp.dir, 'old'), {
      'apt-cache': 'printf "Package: nodejs\\nVersion: 18.19.0+dfsg-6~deb12u2\\n"',
      'apt-get': `echo "$@" >> ${log}`,
    });
    const refused = withFunctions('ensure_node', { PATH: old });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('the distribution offers 18.19.0+dfsg-6~deb12u2');
    expect(fs.existsSync(log)).toBe(false);

    // apt-get "installs" node and npm into the fake folder.
    const PATH = fakePath(tmp.dir, {
      'apt-cache': 'printf "Package: nodejs\\nVersion: 20.19.2+dfsg-1\\n"',
      'apt-get': [
        `echo "$@" >> ${log}`,
        `printf '#!/bin/sh\\necho v20.19.2\\n' > ${fake}/node`,
        `printf '#!/bin/sh\\necho 9.2.0\\n' > ${fake}/npm`,
        `chmod 755 ${fake}/node ${fake}/npm`,
      ].join('\n'),
    });
    const r = withFunctions('ensure_node', { PATH });
    expect(r).toMatchObject({ status: 0, stdout: `${fake}/node\n` });
    expect(fs.readFileSync(log, 'utf8')).toBe('install -y nodejs npm\n');
  });

  it.each([
    ['active', 0, 'restart'],
    ['stopped', 3, 'start'],
  ])(
    'start_service on an agent that is %s (is-active exits %d): %s, so an upgrade replaces the running version',
    (_state, code, verb) => {
      const log = path.join(tmp.dir, 'systemctl.log');
      const PATH = fakePath(tmp.dir, {
        systemctl: `echo "$@" >> ${log}\n[ "$1" = is-active ] && exit ${code}\nexit 0`,
      });
      expect(withFunctions('start_service', { PATH }).status).toBe(0);
      expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toEqual([
        'daemon-reload',
        'enable perch-agent.service',
        'is-active --quiet perch-agent.service',
        `${verb} perch-agent.service`,
      ]);
    },
  );

  it('renders the unit with the checked node and the install prefix', () => {
    const r = withFunctions(`render_unit "${UNIT}" /usr/local/bin/node /srv/perch`);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^ExecStart=\/usr\/local\/bin\/node \/srv\/perch\/agent\/dist\/cli\/perch-agent\.js /m,
    );
    expect(r.stdout).toMatch(/^ExecStartPost=-\+\/srv\/perch\/bin\/perch-agent-forget-token$/m);
    expect(r.stdout).not.toContain('/opt/perch');
  });
});

describe('deploy/forget-enroll-token.sh (ExecStartPost)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let envFile: string;
  let stateDir: string;
  beforeEach(() => {
    tmp = tempDir('perch-forget-');
    envFile = path.join(tmp.dir, 'agent.env');
    stateDir = path.join(tmp.dir, 'state');
    fs.mkdirSync(path.join(stateDir, 'identity'), { recursive: true });
    fs.writeFileSync(envFile, 'PERCH_ENROLL_TOKEN=pet_secret\nPERCH_LOG_LEVEL=debug\n', { mode: 0o640 });
  });
  afterEach(() => tmp.cleanup());

  const run = () =>
    spawnSync('/bin/sh', [FORGET], {
      env: { PATH: '/usr/bin:/bin', PERCH_AGENT_ENV_FILE: envFile, PERCH_STATE_DIR: stateDir },
      encoding: 'utf8',
    });

  it('keeps the token while the device is not enrolled', () => {
    expect(run().status).toBe(0);
    expect(fs.readFileSync(envFile, 'utf8')).toContain('PERCH_ENROLL_TOKEN=pet_secret');
  });

  it('removes the token once enrolled, keeping the other lines and the mode', () => {
    fs.writeFileSync(path.join(stateDir, 'identity', 'credentials.json'), '{"deviceId":"dev-1"}');
    const r = run();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('removed PERCH_ENROLL_TOKEN');
    expect(fs.readFileSync(envFile, 'utf8')).toBe('PERCH_LOG_LEVEL=debug\n');
    expect(fs.statSync(envFile).mode & 0o777).toBe(0o640);
    expect(fs.readdirSync(tmp.dir).sort()).toEqual(['agent.env', 'state']);
    expect(run().status).toBe(0); // idempotent
  });
});
