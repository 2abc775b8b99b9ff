// sysrunc's cgroup delegation hook on its own (what runc runs at a system container's create under
// the systemd cgroup driver), with real cgroups in every hierarchy this host mounts: cgroups made
// for the test stand for runc's and the container's, and the hook runs inside "runc's", as runc's
// child does. Both forms: dist/sysrunc-delegate-cgroups (C, what the manager gives where it is
// built) and bin/sysrunc-delegate-cgroups (the shell reference).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execTool } from '../rig/exec.ts';
import { REPO_ROOT } from '../rig/paths.ts';

const NATIVE_HOOK = path.join(REPO_ROOT, 'dist/sysrunc-delegate-cgroups');
const SCRIPT_HOOK = path.join(REPO_ROOT, 'bin/sysrunc-delegate-cgroups');
const DELEGATED = new Set(['cgroup.procs', 'tasks', 'cgroup.clone_children', 'cgroup.subtree_control', 'cgroup.threads', 'notify_on_release']);
const UID = 1_234_000;
const GID = 1_234_500;

/** One mountpoint per cgroup hierarchy (v1 and v2) mounted at its root. */
function hierarchies(): string[] {
  const seen = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [before = '', after = ''] = line.split(' - ');
    const [, , , root, mountpoint] = before.split(' ');
    const [fstype, , superOptions = ''] = after.split(' ');
    if ((fstype !== 'cgroup' && fstype !== 'cgroup2') || root !== '/' || mountpoint === undefined) continue;
    const key = `${fstype} ${superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro').sort().join(',')}`;
    if (!seen.has(key)) seen.set(key, mountpoint);
  }
  return [...seen.values()];
}

/** Makes a cgroup; cgroup v1's cpuset takes no process until it has its parent's cpus and mems. */
function makeCgroup(dir: string): void {
  mkdirSync(dir);
  for (const name of ['cpuset.cpus', 'cpuset.mems']) {
    const file = path.join(dir, name);
    if (existsSync(file) && readFileSync(file, 'utf8').trim() === '') writeFileSync(file, readFileSync(path.join(path.dirname(dir), name)));
  }
}

const owners = (dir: string): Record<string, number> =>
  Object.fromEntries([['.', statSync(dir).uid], ...readdirSync(dir).filter((f) => !statSync(path.join(dir, f)).isDirectory()).map((f) => [f, statSync(path.join(dir, f)).uid])]);

/** The hook as runc's child: in `runcDirs` (its cgroup.procs in every hierarchy), the state of `pid` on stdin. */
async function runHook(hook: string, runcDirs: string[], pid: number | undefined, args = [String(UID), String(GID)]) {
  const join = runcDirs.map((d) => `echo $$ > '${d}/cgroup.procs'`).join(' && ');
  return execTool('sh', ['-c', `${join} && exec "$@"`, 'sh', hook, ...args], process.env, { reject: false, input: JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid, bundle: '/nonexistent' }) });
}

test('the C hook is built (the build makes dist/sysrunc-delegate-cgroups where a C compiler is)', () => {
  assert.ok(existsSync(NATIVE_HOOK), `${NATIVE_HOOK} is missing: run node scripts/build.mjs`);
});

for (const [form, hook] of [
  ['the C hook', NATIVE_HOOK],
  ['the shell hook', SCRIPT_HOOK],
] as const) {
  describe(form, () => {
    const tag = `sysrunc-dcg-${randomBytes(3).toString('hex')}`;
    const roots = hierarchies();
    const runcDirs = roots.map((r) => path.join(r, tag));
    const containerDirs = runcDirs.map((d) => path.join(d, 'container'));
    const rootOwners = roots.map((r) => owners(r));
    const processes: ChildProcess[] = [];
    const sleeper = (dirs: string[]): ChildProcess => {
      const child = spawn('sleep', ['600'], { stdio: 'ignore' });
      processes.push(child);
      for (const d of dirs) writeFileSync(path.join(d, 'cgroup.procs'), String(child.pid));
      return child;
    };
    let own: ChildProcess;
    let shared: ChildProcess;
    let atRoot: ChildProcess;
    const ran: Record<string, { exitCode: number; stderr: string }> = {};

    before(async () => {
      for (const d of [...runcDirs, ...containerDirs]) makeCgroup(d);
      own = sleeper(containerDirs);
      shared = sleeper(runcDirs);
      atRoot = sleeper(roots);
      for (const [name, child] of [['own', own], ['shared', shared], ['atRoot', atRoot]] as const) {
        const r = await runHook(hook, runcDirs, child.pid);
        ran[name] = { exitCode: r.exitCode ?? -1, stderr: r.stderr };
      }
    });

    after(async () => {
      for (const child of processes) child.kill('SIGKILL');
      await Promise.all(processes.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
      // Whatever a broken hook handed over at a hierarchy's root goes back to the host's root.
      roots.forEach((r, i) => Object.entries(rootOwners[i] ?? {}).forEach(([f, uid]) => statSync(path.join(r, f)).uid !== uid && chownSync(path.join(r, f), uid, 0)));
      for (const d of [...containerDirs, ...runcDirs]) if (existsSync(d)) rmdirSync(d);
    });

    test('succeeds for a container with cgroups of its own, one sharing runc\'s, and one at the hierarchies\' roots', () => {
      assert.deepEqual(ran, { own: { exitCode: 0, stderr: '' }, shared: { exitCode: 0, stderr: '' }, atRoot: { exitCode: 0, stderr: '' } });
    });

    test('the container\'s own cgroup and the files that manage its children belong to its root, in every hierarchy', () => {
      assert.ok(containerDirs.length > 0, 'this host mounts no cgroup hierarchy');
      for (const dir of containerDirs) {
        const handed = Object.entries(owners(dir)).filter(([f]) => f === '.' || DELEGATED.has(f));
        assert.ok(handed.length > 1, `${dir}: no delegation file`);
        for (const [file, uid] of handed) assert.equal(uid, UID, `${dir}/${file}`);
        assert.equal(statSync(dir).gid, GID, dir);
      }
    });

    test('every other file of the container\'s cgroup (its limits) stays the host root\'s', () => {
      for (const dir of containerDirs) {
        for (const [file, uid] of Object.entries(owners(dir))) if (file !== '.' && !DELEGATED.has(file)) assert.equal(uid, 0, `${dir}/${file}`);
      }
    });

    test('a cgroup the container shares with runc is left to the host\'s root', () => {
      for (const dir of runcDirs) assert.deepEqual(Object.entries(owners(dir)).filter(([, uid]) => uid !== 0), [], dir);
    });

    test('a hierarchy\'s root cgroup is left to the host\'s root', () => {
      roots.forEach((r, i) => assert.deepEqual(owners(r), rootOwners[i], r));
    });

    test('a uid that is no number: exit 1, one line naming it', async () => {
      const r = await runHook(hook, runcDirs, own.pid, ['root', String(GID)]);
      assert.equal(r.exitCode, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^sysrunc-delegate-cgroups: .*root/);
    });
  });
}
