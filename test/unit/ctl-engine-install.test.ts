// Issue 23: `sysrunc-ctl install|uninstall docker|containerd` on fake node roots (directories).
// containerd 1.6's own parser (`containerd --config <file> config dump`) reads each version 2
// result; version 3 results are read with a TOML parser (no containerd 2.x on Debian 12).
import { after, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { installRuntime, setReporter, uninstallRuntime, type Engine, type InstallOptions } from '../../src/sysrunc-ctl/install-commands.ts';

const work = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-engine-install-'));
let root: string;
let reports: string[];
setReporter((line) => reports.push(line));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
beforeEach(() => {
  root = path.join(work, `node-${n++}`);
  mkdirSync(path.join(root, 'usr/sbin'), { recursive: true });
  symlinkSync('/usr/sbin/runc', path.join(root, 'usr/sbin/runc'));
  reports = [];
});

const opts = (extra: Partial<InstallOptions> = {}): InstallOptions => ({ root, name: 'sysrunc', runtimePath: '/usr/bin/sysrunc', ...extra });
const put = (node: string, text: string): void => {
  mkdirSync(path.dirname(path.join(root, node)), { recursive: true });
  writeFileSync(path.join(root, node), text);
};
const get = (node: string): string => readFileSync(path.join(root, node), 'utf8');
/** Every file under the node root, with its bytes. */
function tree(dir = root): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    out[path.relative(root, p)] = e.isFile() ? readFileSync(p, 'utf8') : e.isSymbolicLink() ? '<link>' : '<dir>';
  }
  return out;
}
function refusal(engine: Engine, o: InstallOptions): string {
  let message = '';
  assert.throws(() => installRuntime(engine, o), (err: Error) => ((message = err.message), true));
  assert.doesNotMatch(message, /\n/);
  return message;
}
/** containerd 1.6's merged view of a config file. */
const containerdDump = (file: string): string => execFileSync('containerd', ['--config', file, 'config', 'dump'], { encoding: 'utf8' });

const DAEMON_JSON = '{\n  "log-level": "warn",\n  "runtimes": {"crun": {"path": "/usr/bin/crun", "runtimeArgs": ["--debug"]}},\n  "storage-driver": "overlay2",\n  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1024, "Soft": 1024}}\n}\n';

test('install docker adds runtimes.sysrunc and keeps every other key and runtime of daemon.json', () => {
  put('/etc/docker/daemon.json', DAEMON_JSON);
  installRuntime('docker', opts());
  const want = JSON.parse(DAEMON_JSON) as { runtimes: Record<string, unknown> };
  want.runtimes['sysrunc'] = { path: '/usr/bin/sysrunc' };
  assert.deepEqual(JSON.parse(get('/etc/docker/daemon.json')), want);
  assert.match(reports.join('\n'), /reload docker/);
});

test('install docker a second time changes nothing', () => {
  put('/etc/docker/daemon.json', DAEMON_JSON);
  installRuntime('docker', opts());
  const first = tree();
  installRuntime('docker', opts());
  assert.deepEqual(tree(), first);
  assert.match(reports.at(-1) ?? '', /nothing to change/);
});

test('uninstall docker puts daemon.json back byte for byte', () => {
  put('/etc/docker/daemon.json', DAEMON_JSON);
  const before = tree();
  installRuntime('docker', opts());
  uninstallRuntime('docker', opts());
  assert.deepEqual(tree(), before);
});

test('uninstall docker after the file was edited takes out only runtimes.sysrunc', () => {
  put('/etc/docker/daemon.json', DAEMON_JSON);
  installRuntime('docker', opts());
  const edited = { ...(JSON.parse(get('/etc/docker/daemon.json')) as object), debug: true };
  put('/etc/docker/daemon.json', JSON.stringify(edited));
  uninstallRuntime('docker', opts());
  assert.deepEqual(JSON.parse(get('/etc/docker/daemon.json')), { ...(JSON.parse(DAEMON_JSON) as object), debug: true });
});

test('install docker without daemon.json creates one with the runtime alone; uninstall removes it', () => {
  const before = tree();
  installRuntime('docker', opts());
  assert.deepEqual(JSON.parse(get('/etc/docker/daemon.json')), { runtimes: { sysrunc: { path: '/usr/bin/sysrunc' } } });
  uninstallRuntime('docker', opts());
  assert.ok(!existsSync(path.join(root, 'etc/docker/daemon.json')));
  // /etc/docker, made for the file, stays.
  assert.deepEqual(Object.keys(tree()).filter((f) => !(f in before)), ['etc', 'etc/docker']);
});

test('install docker on a broken daemon.json is refused with one line and changes nothing', () => {
  put('/etc/docker/daemon.json', '{"runtimes": {');
  const before = tree();
  assert.match(refusal('docker', opts()), /daemon\.json is not valid JSON .*nothing was changed/);
  assert.deepEqual(tree(), before);
});

test('install docker --dry-run prints the diff and changes nothing', () => {
  put('/etc/docker/daemon.json', DAEMON_JSON);
  const before = tree();
  installRuntime('docker', opts({ dryRun: true }));
  assert.deepEqual(tree(), before);
  assert.match(reports.join('\n'), /^\+\s+"sysrunc": \{$/m);
});

// A kubeadm-style containerd 1.6 config (version 2) with CRI settings of its own.
const CONFIG_V2 = `version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true`;

test('install containerd (version 2) adds the sysrunc handler that containerd 1.6 reads, and keeps the other CRI settings', () => {
  put('/etc/containerd/config.toml', CONFIG_V2);
  installRuntime('containerd', opts());
  const dump = containerdDump(path.join(root, 'etc/containerd/config.toml'));
  assert.match(dump, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.sysrunc\.options\]\n\s+BinaryName = "\/usr\/bin\/sysrunc"/);
  assert.match(dump, /sandbox_image = "registry\.k8s\.io\/pause:3\.9"/);
  assert.match(dump, /SystemdCgroup = true/);
  assert.match(reports.join('\n'), /restart containerd/);
});

/**
 * The tree before an install into this config.toml and after uninstall, with the check that a
 * second install changed nothing on the way.
 */
function installTwiceThenUninstallContainerd(configToml: string): { before: Record<string, string>; after: Record<string, string> } {
  put('/etc/containerd/config.toml', configToml);
  const before = tree();
  installRuntime('containerd', opts());
  const installed = tree();
  installRuntime('containerd', opts());
  assert.deepEqual(tree(), installed);
  uninstallRuntime('containerd', opts());
  return { before, after: tree() };
}

test('install containerd (version 2) a second time changes nothing, and uninstall puts config.toml back byte for byte', () => {
  const { before, after } = installTwiceThenUninstallContainerd(CONFIG_V2);
  assert.deepEqual(after, before);
});

test('uninstall containerd after config.toml was edited takes out only sysrunc\'s block', () => {
  put('/etc/containerd/config.toml', CONFIG_V2);
  installRuntime('containerd', opts());
  put('/etc/containerd/config.toml', `${get('/etc/containerd/config.toml')}\n[debug]\n  level = "debug"\n`);
  uninstallRuntime('containerd', opts());
  assert.equal(get('/etc/containerd/config.toml'), `${CONFIG_V2}\n[debug]\n  level = "debug"\n`);
});

test('install containerd without config.toml (--config-version 2) writes one containerd 1.6 reads; uninstall removes it', () => {
  installRuntime('containerd', opts({ configVersion: '2' }));
  assert.match(containerdDump(path.join(root, 'etc/containerd/config.toml')), /runtimes\.sysrunc\.options\]\n\s+BinaryName = "\/usr\/bin\/sysrunc"/);
  uninstallRuntime('containerd', opts());
  assert.ok(!existsSync(path.join(root, 'etc/containerd/config.toml')));
});

test('install containerd on a broken config.toml is refused with one line and changes nothing', () => {
  put('/etc/containerd/config.toml', 'version = 2\n[plugins."io.containerd.grpc.v1.cri"\n');
  const before = tree();
  assert.match(refusal('containerd', opts()), /config\.toml is not valid TOML .*nothing was changed/);
  assert.deepEqual(tree(), before);
});

// A containerd 2.x config (version 3).
const CONFIG_V3 = `version = 3
root = "/var/lib/containerd"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
`;

test('install containerd (version 3) writes a conf.d drop-in with the handler and imports it from config.toml', () => {
  put('/etc/containerd/config.toml', CONFIG_V3);
  installRuntime('containerd', opts());
  const main = parseToml(get('/etc/containerd/config.toml')) as { imports: string[]; plugins: Record<string, unknown> };
  assert.deepEqual(main.imports, ['/etc/containerd/conf.d/sysrunc.toml']);
  assert.ok(main.plugins['io.containerd.cri.v1.images'] !== undefined);
  const dropIn = parseToml(get('/etc/containerd/conf.d/sysrunc.toml')) as { plugins: Record<string, { containerd: { runtimes: Record<string, { options: { BinaryName: string } }> } }> };
  assert.equal(dropIn.plugins['io.containerd.cri.v1.runtime']?.containerd.runtimes['sysrunc']?.options.BinaryName, '/usr/bin/sysrunc');
});

test('install containerd (version 3) whose imports already cover conf.d leaves config.toml as it is', () => {
  const text = CONFIG_V3.replace('version = 3\n', 'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n');
  put('/etc/containerd/config.toml', text);
  installRuntime('containerd', opts());
  assert.equal(get('/etc/containerd/config.toml'), text);
  assert.ok(existsSync(path.join(root, 'etc/containerd/conf.d/sysrunc.toml')));
});

// What `containerd config default` and `containerd config migrate` (2.x) write: an empty imports list.
const CONFIG_V3_EMPTY_IMPORTS = CONFIG_V3.replace('version = 3\n', 'version = 3\nimports = []\n');

test('install containerd (version 3) on an empty `imports = []` imports the drop-in in that line', () => {
  put('/etc/containerd/config.toml', CONFIG_V3_EMPTY_IMPORTS);
  installRuntime('containerd', opts());
  const text = get('/etc/containerd/config.toml');
  assert.deepEqual((parseToml(text) as { imports: string[] }).imports, ['/etc/containerd/conf.d/sysrunc.toml']);
  assert.equal(text.split('\n').filter((l) => l.startsWith('imports')).length, 1);
  assert.ok(!text.includes('BEGIN sysrunc'), 'no tables appended to config.toml');
  assert.ok(existsSync(path.join(root, 'etc/containerd/conf.d/sysrunc.toml')));
});

test('uninstall containerd after config.toml was edited puts the empty `imports = []` back', () => {
  put('/etc/containerd/config.toml', CONFIG_V3_EMPTY_IMPORTS);
  installRuntime('containerd', opts());
  put('/etc/containerd/config.toml', `${get('/etc/containerd/config.toml')}oom_score = 0\n`);
  uninstallRuntime('containerd', opts());
  assert.equal(get('/etc/containerd/config.toml'), `${CONFIG_V3_EMPTY_IMPORTS}oom_score = 0\n`);
  assert.ok(!existsSync(path.join(root, 'etc/containerd/conf.d/sysrunc.toml')));
});

test('install containerd (version 3) a second time changes nothing, and uninstall puts everything back byte for byte', () => {
  const { before, after } = installTwiceThenUninstallContainerd(CONFIG_V3);
  // conf.d, made for the drop-in, stays (empty) as containerd 2.2's default import directory.
  delete after['etc/containerd/conf.d'];
  assert.deepEqual(after, before);
});

test('install containerd without config.toml (--config-version 3) writes a version 3 config.toml that imports the drop-in; uninstall removes both', () => {
  installRuntime('containerd', opts({ configVersion: '3' }));
  const main = parseToml(get('/etc/containerd/config.toml')) as { version: number; imports: string[] };
  assert.equal(main.version, 3);
  assert.deepEqual(main.imports, ['/etc/containerd/conf.d/sysrunc.toml']);
  assert.match(get('/etc/containerd/conf.d/sysrunc.toml'), /BinaryName = "\/usr\/bin\/sysrunc"/);
  uninstallRuntime('containerd', opts());
  assert.ok(!existsSync(path.join(root, 'etc/containerd/config.toml')));
  assert.ok(!existsSync(path.join(root, 'etc/containerd/conf.d/sysrunc.toml')));
});

test('install containerd on a broken version 3 config.toml is refused with one line and changes nothing', () => {
  put('/etc/containerd/config.toml', CONFIG_V3.replace('sandbox = ', 'sandbox == '));
  const before = tree();
  assert.match(refusal('containerd', opts()), /config\.toml is not valid TOML .*nothing was changed/);
  assert.deepEqual(tree(), before);
});

test('install is refused with one line where runc is missing, and changes nothing', () => {
  rmSync(path.join(root, 'usr/sbin/runc'));
  put('/etc/docker/daemon.json', DAEMON_JSON);
  const before = tree();
  assert.match(refusal('docker', opts()), /^runc not found in .*install runc 1\.1 or newer$/);
  assert.deepEqual(tree(), before);
});

test('install is refused with one line where runc is older than 1.1', () => {
  rmSync(path.join(root, 'usr/sbin/runc'));
  put('/usr/sbin/runc', '#!/bin/sh\necho "runc version 1.0.3"\n');
  chmodSync(path.join(root, 'usr/sbin/runc'), 0o755);
  assert.match(refusal('containerd', opts({ configVersion: '2' })), /runc is version 1\.0: sysrunc needs runc 1\.1 or newer$/);
  assert.ok(!existsSync(path.join(root, 'etc/containerd/config.toml')));
});

test('install is refused with one line where /etc/subuid leaves no room for subordinate ids', () => {
  put('/etc/subuid', 'someone:65536:4294901759\n');
  assert.match(refusal('docker', opts()), /subuid leaves no free range of \d+ subordinate ids/);
});

// The kernel's facts below are simulated through the installer's probe inputs: this host has user
// namespaces, idmapped mounts and overlayfs with metacopy, and turning any off would disturb every
// other test running on it.
const NO_IDMAP = { supported: false as const, reason: 'idmapped mounts not supported by filesystem ext4 at /var/lib: ENOSYS (Function not implemented)' };
/** A simulated kernel: its /proc/sys, /proc/filesystems and /sys/module, under the node root. */
function kernel(o: { userns?: number; overlay?: boolean; metacopy?: boolean }): NonNullable<InstallOptions['probes']> {
  put('/sim/proc/sys/user/max_user_namespaces', `${o.userns ?? 63000}\n`);
  put('/sim/proc/filesystems', `nodev\tsysfs\nnodev\ttmpfs\n\text4\n${o.overlay === true ? 'nodev\toverlay\n' : ''}`);
  mkdirSync(path.join(root, 'sim/sys/module', o.overlay === true ? 'overlay/parameters' : ''), { recursive: true });
  if (o.metacopy === true) put('/sim/sys/module/overlay/parameters/metacopy', 'N\n');
  return { procSys: path.join(root, 'sim/proc/sys'), procFilesystems: path.join(root, 'sim/proc/filesystems'), sysModule: path.join(root, 'sim/sys/module') };
}

test('install is refused with one line where user namespaces are off (max_user_namespaces 0), and changes nothing', () => {
  put('/etc/docker/daemon.json', DAEMON_JSON);
  const probes = kernel({ userns: 0 });
  const before = tree();
  assert.match(refusal('docker', opts({ probes })), /^user namespaces are not available \(.*max_user_namespaces: 0\): sysrunc cannot work on this kernel$/);
  assert.deepEqual(tree(), before);
});

test('install is refused with one line where there are no idmapped mounts and no overlayfs for the clone fallback, and changes nothing', () => {
  put('/etc/containerd/config.toml', CONFIG_V2);
  const probes = { ...kernel({ overlay: false }), idmap: () => NO_IDMAP };
  const before = tree();
  assert.match(refusal('containerd', opts({ probes })), /^no idmapped mounts \(idmapped mounts not supported by filesystem ext4 .*\) and no clone fallback \(no overlayfs in .*\): sysrunc cannot give containers their image's file ownership here$/);
  assert.deepEqual(tree(), before);
});

test('install is refused where overlayfs has no metacopy (a kernel before 4.19 with overlay as a module) and there are no idmapped mounts', () => {
  put('/lib/modules/4.14.0-old/kernel/fs/overlayfs/overlay.ko', '');
  const probes = { ...kernel({ overlay: false }), kernelRelease: '4.14.0-old', idmap: () => NO_IDMAP };
  assert.match(refusal('docker', opts({ probes })), /and no clone fallback \(overlayfs on kernel 4\.14\.0-old has no metacopy \(4\.19 or newer\)\)/);
});

test('install goes ahead without idmapped mounts where the clone fallback works (overlayfs with metacopy, as on Linux 5.10)', () => {
  const probes = { ...kernel({ overlay: true, metacopy: true }), kernelRelease: '5.10.0-32-amd64', idmap: () => NO_IDMAP };
  installRuntime('docker', opts({ probes }));
  assert.deepEqual(JSON.parse(get('/etc/docker/daemon.json')), { runtimes: { sysrunc: { path: '/usr/bin/sysrunc' } } });
});

test('install goes ahead where the idmapped mount probe could not run (no privilege): no answer is no refusal', () => {
  const probes = { ...kernel({ overlay: false }), idmap: () => ({ supported: false as const, reason: 'cannot probe idmapped mount support at /var/lib: open_tree: EPERM (Operation not permitted)' }) };
  installRuntime('docker', opts({ probes }));
  assert.ok(existsSync(path.join(root, 'etc/docker/daemon.json')));
});

test('the idmapped mount probe is asked about the filesystem of the engine\'s layers under --root', () => {
  put('/var/lib/containerd/.keep', '');
  const asked: string[] = [];
  installRuntime('containerd', opts({ configVersion: '2', probes: { ...kernel({ overlay: true, metacopy: true }), idmap: (p) => (asked.push(p), { supported: true }) } }));
  assert.deepEqual(asked, [path.join(root, 'var/lib/containerd')]);
});
