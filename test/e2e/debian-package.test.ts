// Issue 23: the Debian package. `npm run package` builds it (lintian included); the README's
// *Install* steps are followed from it: `apt-get install ./sysrunc_<version>_amd64.deb`, then
// `sysrunc-ctl install docker` (into a private dockerd's daemon.json, not the machine's), and
// Docker runs a container and a Docker-in-Docker system container through the installed
// /usr/bin/sysrunc; removal is refused while a container runs, and purge leaves the machine as it
// was (files, units, subid entries, state, mounts, processes).
// It installs into the machine's real paths (/usr, /etc, /var/lib/sysrunc, /run/sysrunc): run it
// only under the e2e lock, and never where sysrunc is installed already (it refuses).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execTool, startDockerd, ensureDockerImage, type DockerDaemon } from '../rig/index.ts';
import { DEBIAN_IMAGE_TAGS, ensureDebianImage } from '../rig/debian-images.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = path.join(ROOT, 'dist', `sysrunc_${VERSION}_amd64.deb`);
// Everything of sysrunc's that may exist on the machine, for the before/after comparison.
const WATCHED = ['/usr/bin', '/usr/sbin', '/usr/lib/sysrunc', '/lib/systemd/system', '/etc/systemd/system', '/etc/sysrunc', '/var/lib/sysrunc', '/run/sysrunc', '/usr/share/doc/sysrunc', '/var/log'];

interface MachineState {
  files: string[];
  subuid: string;
  subgid: string;
  mounts: string[];
  processes: string[];
}

function walk(dir: string, depth: number): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (!p.includes('sysrunc') && !(e.isDirectory() && depth > 0)) continue;
    if (p.includes('sysrunc-test')) continue;
    if (p.includes('sysrunc')) out.push(e.isSymbolicLink() ? `${p} -> ${readlinkSync(p)}` : p);
    if (e.isDirectory() && !e.isSymbolicLink() && depth > 0) out.push(...walk(p, depth - 1));
  }
  return out.sort();
}

function machineState(): MachineState {
  const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '<absent>');
  const processes: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`);
      if (exe.startsWith('/usr/lib/sysrunc/')) processes.push(`${pid} ${exe}`);
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return {
    files: WATCHED.flatMap((d) => walk(d, 3)),
    subuid: read('/etc/subuid'),
    subgid: read('/etc/subgid'),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / \/run\/sysrunc[/ ]| \/var\/lib\/sysrunc[/ ]/.test(l)),
    processes,
  };
}

/** The manager drops a container's record once it sees it gone (its container watch): until then. */
async function managerForgets(id: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const status = await execTool('/usr/bin/sysrunc-ctl', ['status', '--json'], process.env);
    if (!status.stdout.includes(id)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the manager still lists container ${id} 30 s after docker rm`);
}

let before_: MachineState;
let dockerd: DockerDaemon | undefined;
let installed = false;
// The .deb and the daemon.json of the README's steps, outside the checkout.
const scratch = mkdtempSync('/var/tmp/sysrunc-deb-');
const daemonJson = path.join(scratch, 'daemon.json');

/** The "sysrunc:" lines of a subid file that were not there before install. */
function addedSubids(now: string, before: string): string[] {
  const had = new Set(before.split('\n'));
  return now.split('\n').filter((l) => l.startsWith('sysrunc:') && !had.has(l));
}

before(async () => {
  const have = await execTool('dpkg-query', ['-W', '-f=${Status}', 'sysrunc'], process.env, { reject: false });
  if (have.exitCode === 0 && have.stdout.includes('installed')) throw new Error('sysrunc is installed as a package already: this test installs and purges it, remove it first');
  for (const p of ['/etc/sysrunc', '/var/lib/sysrunc', '/run/sysrunc']) {
    if (existsSync(p)) throw new Error(`${p} exists: this test would purge it; it runs only on a machine without sysrunc installed`);
  }
  before_ = machineState();
  await execTool(process.execPath, [path.join(ROOT, 'scripts/package.mjs')], process.env, { timeoutMs: 900_000 });
});

after(async () => {
  await dockerd?.docker(['rm', '-f', 'held'], { reject: false });
  await dockerd?.stop({ purge: true });
  // Whatever failed above, the machine gets its state back.
  if (installed) await execTool('dpkg', ['--purge', 'sysrunc'], process.env, { reject: false });
  rmSync(scratch, { recursive: true, force: true });
});

test('npm run package builds sysrunc_<package.json version>_amd64.deb that depends on runc and iproute2 and recommends lxcfs', async () => {
  const control = (await execTool('dpkg-deb', ['--field', DEB, 'Package', 'Version', 'Depends', 'Recommends'], process.env)).stdout;
  assert.match(control, new RegExp(`^Version: ${VERSION.replaceAll('.', '\\.')}$`, 'm'));
  assert.match(control, /^Depends: .*\brunc\b.*\biproute2\b/m);
  assert.match(control, /^Recommends: lxcfs$/m);
});

test('apt-get install ./sysrunc_<version>_amd64.deb (README, Install) installs it and starts the manager (start-stop-daemon where systemd is not PID 1)', async () => {
  const deb = path.join(scratch, path.basename(DEB));
  copyFileSync(DEB, deb);
  const r = await execTool('apt-get', ['install', '-y', deb], process.env, { reject: false, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  installed = true;
  assert.equal(r.exitCode, 0, r.stderr);
  if (!existsSync('/run/systemd/system')) assert.match(r.stdout, /started sysrunc-mgr with start-stop-daemon/);
  const status = await execTool('/usr/bin/sysrunc-ctl', ['status'], process.env);
  assert.match(status.stdout, /^containers: 0$/m);
});

test('the manager added subordinate ids for user sysrunc to /etc/subuid and /etc/subgid (which purge must take out again)', () => {
  assert.equal(addedSubids(readFileSync('/etc/subuid', 'utf8'), before_.subuid).length, 1, readFileSync('/etc/subuid', 'utf8'));
  assert.equal(addedSubids(readFileSync('/etc/subgid', 'utf8'), before_.subgid).length, 1, readFileSync('/etc/subgid', 'utf8'));
});

test('the installed commands have manual pages', () => {
  for (const page of ['man1/sysrunc.1.gz', 'man1/sysrunc-ctl.1.gz', 'man8/sysrunc-mgr.8.gz', 'man8/sysrunc-depotd.8.gz', 'man8/sysrunc-tenantd.8.gz']) {
    assert.ok(existsSync(path.join('/usr/share/man', page)), page);
  }
});

test('sysrunc-ctl install docker (README, Install) writes the runtime into daemon.json and says to reload dockerd', async () => {
  const r = await execTool('/usr/bin/sysrunc-ctl', ['install', 'docker', '--config', daemonJson], process.env);
  assert.match(r.stdout, /reload docker/);
  assert.deepEqual(JSON.parse(readFileSync(daemonJson, 'utf8')), { runtimes: { sysrunc: { path: '/usr/bin/sysrunc' } } });
});

test('/etc/sysrunc/config.json is a conffile and the manager unit is enabled, the depot and tenant units are not', async () => {
  const conffiles = (await execTool('dpkg-query', ['--showformat=${Conffiles}', '-W', 'sysrunc'], process.env)).stdout;
  assert.match(conffiles, /\/etc\/sysrunc\/config\.json [0-9a-f]{32}/);
  assert.ok(existsSync('/etc/systemd/system/multi-user.target.wants/sysrunc-mgr.service'));
  assert.ok(!existsSync('/etc/systemd/system/multi-user.target.wants/sysrunc-depotd.service'));
  assert.ok(!existsSync('/etc/systemd/system/multi-user.target.wants/sysrunc-tenantd.service'));
});

test('sysrunc --version names runc, then the package version', async () => {
  const r = await execTool('/usr/bin/sysrunc', ['--version'], process.env);
  assert.match(r.stdout, /^runc version /m);
  assert.match(r.stdout, new RegExp(`^sysrunc version ${VERSION.replaceAll('.', '\\.')}$`, 'm'));
});

test('the manager is the compiled binary and maps no node binary and nothing from a node_modules directory', () => {
  const pid = readFileSync('/run/sysrunc-mgr.pid', 'utf8').trim();
  assert.equal(readlinkSync(`/proc/${pid}/exe`), '/usr/lib/sysrunc/dist/sysrunc-multi');
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  assert.doesNotMatch(maps, /node_modules|\/bin\/node\b/);
});

test('docker run --runtime=sysrunc through the installed /usr/bin/sysrunc runs the container in a user namespace of its own', async () => {
  // A private dockerd with the runtimes sysrunc-ctl wrote (the README's reload: it reads them at start).
  const { runtimes } = JSON.parse(readFileSync(daemonJson, 'utf8')) as { runtimes: Record<string, { path: string }> };
  dockerd = await startDockerd({ name: 'e2e-deb', runtimes });
  await ensureDockerImage(dockerd);
  const r = await dockerd.docker(['run', '--rm', '--runtime=sysrunc', 'bb:local', 'cat', '/proc/self/uid_map']);
  const [inside, outside] = r.stdout.trim().split(/\s+/);
  assert.equal(inside, '0');
  assert.notEqual(outside, '0', `uid_map: ${r.stdout}`);
});

test('a system container runs through the installed files: Docker in Docker, whose inner dockerd runs a container', async () => {
  assert.ok(dockerd);
  const d = dockerd;
  await ensureDebianImage(d, 'dind');
  const id = (await d.docker(['run', '-d', '--runtime=sysrunc', DEBIAN_IMAGE_TAGS.dind])).stdout.trim();
  try {
    // The inner dockerd needs a moment to start: asked again until it answers (60 tries).
    let driver = '';
    for (let i = 0; i < 60 && driver === ''; i++) {
      const info = await d.docker(['exec', id, 'docker', 'info', '--format', '{{.Driver}}'], { reject: false });
      if (info.exitCode === 0) driver = info.stdout.trim();
      else await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.equal(driver, 'overlay2');
    await d.docker(['exec', id, 'sh', '-c', 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ln -s busybox /tmp/bb/bin/echo && tar -C /tmp/bb -c . | docker import - inner:bb']);
    const inner = await d.docker(['exec', id, 'docker', 'run', '--rm', 'inner:bb', 'echo', 'hello from the inner container']);
    assert.equal(inner.stdout.trim(), 'hello from the inner container');
  } finally {
    await d.docker(['rm', '-f', id], { reject: false });
    await managerForgets(id);
  }
});

test('dpkg -r refuses while a container runs with sysrunc, naming it, and the package stays installed', async () => {
  assert.ok(dockerd);
  const id = (await dockerd.docker(['run', '-d', '--name', 'held', '--runtime=sysrunc', 'bb:local', 'sleep', '1000'])).stdout.trim();
  const r = await execTool('dpkg', ['-r', 'sysrunc'], process.env, { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, new RegExp(`still run with sysrunc \\(${id}\\)`));
  // dpkg marks the package for removal (want: deinstall); it stays installed.
  const state = (await execTool('dpkg-query', ['-W', '-f=${db:Status-Status}', 'sysrunc'], process.env)).stdout;
  assert.equal(state, 'installed');
  await dockerd.docker(['rm', '-f', 'held']);
  await managerForgets(id);
});

test('apt-get purge sysrunc (README) leaves nothing of sysrunc: files, units, subid entries, state, mounts, processes', async () => {
  const r = await execTool('apt-get', ['purge', '-y', 'sysrunc'], process.env, { reject: false, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  assert.equal(r.exitCode, 0, r.stderr);
  installed = false;
  assert.deepEqual(machineState(), before_);
});
