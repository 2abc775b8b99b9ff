// Self-test of the real-parts rig: private dockerd/containerd with runc behind a runtime alias.
// Run as root: node --import tsx --test test/rig/rig.test.ts
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startContainerd, startDockerd, type ContainerdDaemon, type DockerDaemon } from './dockerd.ts';
import { execTool } from './exec.ts';
import { ensureBusyboxRootfs, ensureContainerdImage, ensureDockerImage, makeBundle } from './images.ts';
import { bins, REPO_ROOT, rigDirs, RIG_RUN_DIR } from './paths.ts';
import { mountsUnder, pidAlive, processesMentioning, waitUntil } from './proc.ts';

const RUNC_ALIAS = { 'runc-alias': { path: '/usr/sbin/runc' } };
const suffix = String(process.pid);

async function timed<T>(t: TestContext, what: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const out = await fn();
  t.diagnostic(`${what}: ${Math.round(performance.now() - start)} ms`);
  return out;
}

function leftovers(name: string): { mounts: string[]; procs: number[] } {
  const d = rigDirs(name);
  return {
    mounts: mountsUnder([d.run, d.lib]),
    procs: processesMentioning([`${d.run}/`, `${d.lib}/`]).map((p) => p.pid),
  };
}

describe('busybox rootfs', () => {
  let rootfs: string;
  before(async () => {
    rootfs = await ensureBusyboxRootfs();
  });

  test('has a static busybox with applet symlinks to it', () => {
    assert.equal(readlinkSync(path.join(rootfs, 'bin/sh')), '/bin/busybox');
    assert.ok(lstatSync(path.join(rootfs, 'bin/busybox')).isFile());
    assert.ok(lstatSync(path.join(rootfs, 'usr/bin/env')).isSymbolicLink());
  });

  test('has root and nobody in passwd and group', () => {
    const passwd = readFileSync(path.join(rootfs, 'etc/passwd'), 'utf8');
    const group = readFileSync(path.join(rootfs, 'etc/group'), 'utf8');
    assert.match(passwd, /^root:x:0:0:/m);
    assert.match(passwd, /^nobody:x:65534:65534:/m);
    assert.match(group, /^root:x:0:/m);
    assert.match(group, /^nobody:x:65534:/m);
  });

  test('has a sticky world-writable /tmp and empty /proc /sys /dev', () => {
    assert.equal(statSync(path.join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
    for (const dir of ['proc', 'sys', 'dev']) assert.ok(statSync(path.join(rootfs, dir)).isDirectory());
  });

  test('is reused from the cache on the second call', async () => {
    const before = statSync(rootfs).ino;
    assert.equal(await ensureBusyboxRootfs(), rootfs);
    assert.equal(statSync(rootfs).ino, before);
  });
});

describe('makeBundle', () => {
  test('makes a bundle runc runs directly', async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'rig-bundle-'));
    const root = path.join(RIG_RUN_DIR, `runc-${suffix}`);
    t.after(async () => {
      await execTool(bins.runc, ['--root', root, 'delete', '--force', 'rigb'], process.env, { reject: false });
      await rm(work, { recursive: true, force: true });
      await rm(root, { recursive: true, force: true });
    });
    const b = await makeBundle(path.join(work, 'b'), await ensureBusyboxRootfs(), ['echo', 'from bundle']);
    const config = JSON.parse(await readFile(b.config, 'utf8')) as { process: { terminal: boolean } };
    assert.equal(config.process.terminal, false);
    const r = await timed(t, 'runc run (bundle)', () =>
      execTool(bins.runc, ['--root', root, 'run', '--bundle', b.bundle, 'rigb'], process.env),
    );
    assert.equal(r.stdout, 'from bundle');
  });
});

describe('private dockerd', () => {
  let a: DockerDaemon;
  let b: DockerDaemon | undefined;

  before(async () => {
    const start = performance.now();
    await ensureBusyboxRootfs();
    const built = performance.now();
    a = await startDockerd({ name: `rig-a-${suffix}`, runtimes: RUNC_ALIAS });
    const started = performance.now();
    process.stderr.write(
      `# timings: rootfs ${Math.round(built - start)} ms, dockerd start ${Math.round(started - built)} ms (client ${a.cli})\n`,
    );
  });
  after(async () => {
    await b?.stop({ purge: true });
    await a?.stop({ purge: true });
  });

  test('imports the busybox image once', async (t) => {
    const id = await timed(t, 'docker import', () => ensureDockerImage(a));
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await ensureDockerImage(a), id);
  });

  test('docker run --runtime=runc-alias bb:local echo hi prints hi', async (t) => {
    await ensureDockerImage(a);
    const r = await timed(t, 'docker run --rm echo', () =>
      a.docker(['run', '--rm', '--runtime=runc-alias', 'bb:local', 'echo', 'hi']),
    );
    assert.equal(r.stdout, 'hi');
  });

  test('runtimeRoot() is where the aliased runtime keeps container state', async () => {
    await ensureDockerImage(a);
    const run = await a.docker(['run', '-d', '--runtime=runc-alias', 'bb:local', 'sleep', '1000']);
    const id = run.stdout.trim();
    try {
      assert.ok(existsSync(path.join(a.runtimeRoot('runc-alias'), id, 'state.json')));
    } finally {
      await a.docker(['rm', '-f', id]);
    }
  });

  test('the daemon does not use the system docker or containerd paths', async () => {
    const info = await a.docker(['info', '--format', '{{.DockerRootDir}}']);
    assert.equal(info.stdout, a.dataRoot);
    assert.ok(a.containerd.address.startsWith(`${RIG_RUN_DIR}/`));
    assert.equal(existsSync('/run/containerd/containerd.sock'), false);
  });

  test('a failing command resolves with its exit code when reject is false', async () => {
    await ensureDockerImage(a);
    const r = await a.docker(['run', '--rm', '--runtime=runc-alias', 'bb:local', 'sh', '-c', 'exit 7'], { reject: false });
    assert.equal(r.exitCode, 7);
  });

  test('two daemons run at once', async (t) => {
    b = await timed(t, 'second dockerd start', () => startDockerd({ name: `rig-b-${suffix}`, runtimes: RUNC_ALIAS }));
    await ensureDockerImage(b);
    const [ra, rb] = await Promise.all([
      a.docker(['run', '--rm', '--runtime=runc-alias', 'bb:local', 'echo', 'a']),
      b.docker(['run', '--rm', '--runtime=runc-alias', 'bb:local', 'echo', 'b']),
    ]);
    assert.deepEqual([ra.stdout, rb.stdout], ['a', 'b']);
    assert.notEqual(a.socket, b.socket);
  });

  test('stop() leaves no mount under the data root and no process', async (t) => {
    const c = await startDockerd({ name: `rig-c-${suffix}`, runtimes: RUNC_ALIAS });
    await ensureDockerImage(c);
    await c.docker(['run', '-d', '--runtime=runc-alias', 'bb:local', 'sleep', '1000']);
    assert.notDeepEqual(mountsUnder([c.dataRoot]), []);
    await timed(t, 'stop() with a running container', () => c.stop());
    assert.deepEqual(leftovers(c.name), { mounts: [], procs: [] });
    assert.equal(pidAlive(c.pid), false);
    assert.equal(pidAlive(c.containerd.pid), false);
    assert.equal(existsSync(c.execRoot), false);
    await execTool('bash', [path.join(REPO_ROOT, 'scripts/rig-clean.sh'), '--purge', c.name], process.env);
  });
});

describe('dockerd startup failure', () => {
  test('reports the tail of the dockerd log and leaves nothing running', async () => {
    const name = `rig-bad-${suffix}`;
    await assert.rejects(
      startDockerd({ name, runtimes: RUNC_ALIAS, daemonConfig: { 'no-such-option': true } }),
      /exited during startup[\s\S]*tail of [\s\S]*no-such-option/,
    );
    assert.deepEqual(leftovers(name), { mounts: [], procs: [] });
    await execTool('bash', [path.join(REPO_ROOT, 'scripts/rig-clean.sh'), '--purge', name], process.env);
  });
});

describe('crash safety net', () => {
  test('a killed test process leaves no daemon, container or mount behind', async (t) => {
    const name = `rig-crash-${suffix}`;
    t.after(() => execTool('bash', [path.join(REPO_ROOT, 'scripts/rig-clean.sh'), '--purge', name], process.env));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/rig/crash-child.ts'), name], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        if (buf.includes('\n')) resolve(buf.trim());
      });
      child.on('exit', (code) => reject(new Error(`crash child exited early (${code})`)));
    });
    const [, dockerdPid, containerdPid] = line.split(' ').map(Number);
    assert.ok(dockerdPid !== undefined && containerdPid !== undefined && pidAlive(dockerdPid));
    assert.notDeepEqual(leftovers(name).mounts, []);
    child.kill('SIGKILL');
    await waitUntil('the watchdog to clean up', () => {
      const l = leftovers(name);
      return l.mounts.length === 0 && l.procs.length === 0 && !existsSync(rigDirs(name).run);
    }, 60_000, 200);
    assert.equal(pidAlive(dockerdPid), false);
    assert.equal(pidAlive(containerdPid), false);
  });
});

describe('private containerd', () => {
  let c: ContainerdDaemon;
  let work: string;
  let wrapper: string;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'rig-ctr-'));
    // Logs each runtime call so the test can see the shim used the configured binary and root.
    wrapper = path.join(work, 'runc-wrapper');
    await writeFile(wrapper, `#!/bin/sh\necho "$@" >> ${work}/calls.log\nexec /usr/sbin/runc "$@"\n`);
    await chmod(wrapper, 0o755);
    c = await startContainerd({ name: `rig-ctr-${suffix}`, runtimeBinary: wrapper });
  });
  after(async () => {
    await c?.stop({ purge: true });
    await rm(work, { recursive: true, force: true });
  });

  test('ctr runs a busybox container through the runc v2 shim', async (t) => {
    const ref = await timed(t, 'ctr image import', () => ensureContainerdImage(c));
    const r = await timed(t, 'ctr run --rm echo', () => c.run(ref, 'ctr1', ['echo', 'hello from ctr']));
    assert.equal(r.stdout.trim(), 'hello from ctr');
  });

  test('the shim calls the configured runtime binary with the rig runc root', async () => {
    const ref = await ensureContainerdImage(c);
    await c.run(ref, 'ctr2', ['true']);
    const calls = await readFile(path.join(work, 'calls.log'), 'utf8');
    assert.match(calls, new RegExp(`--root ${path.join(c.runcRoot, c.namespace)} .*create`));
  });
});
