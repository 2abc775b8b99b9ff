// Every `sysrunc-ctl` command line the README prints (the depot's and the tenant service's examples)
// runs as printed, in order, against real daemons: a private manager, sysrunc-depotd, containerd and
// sysrunc-tenantd. Only the README's host paths and names are replaced by private ones (each
// replacement must find its text), and `[--json]` is run as `--json`. Each line runs in sh with the
// sockets in the environment; `$id` carries over between lines as the README's shell would keep it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DepotClient } from '../../src/depot-api/client.ts';
import { TenantsClient } from '../../src/tenants-api/client.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { sweepManager } from '../helpers/manager-state.ts';
import { startContainerd, type ContainerdDaemon } from '../rig/dockerd.ts';
import { ensureBusyboxRootfs, ensureContainerdImage } from '../rig/images.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import { mountsUnder } from '../rig/proc.ts';

const TAG = process.pid.toString(36);
const BASE = `/run/sysrunc-test/readme-${TAG}`;
const WORK = `/var/tmp/readme-e2e-${TAG}`;
const NETNS = `readme-${TAG}`;
const DEPOT_SOCKET = path.join(BASE, 'depotd.sock');
const TENANTS_SOCKET = path.join(BASE, 'tenantd.sock');

/** The README's example code blocks: the fenced block right after each of these headings. */
const SECTIONS = {
  depot: '## The depot: long-lived containers with tracked processes',
  tenant: '## The tenant container service',
} as const;
/** The only line not run: it needs a terminal (the depot tests cover -t and -i). */
const NEEDS_A_TERMINAL = /sysrunc-ctl depot exec -it /;

let mgr: TestManager;
let ctrd: ContainerdDaemon;
const daemons: ChildProcess[] = [];

function readmeCommands(section: keyof typeof SECTIONS): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const from = readme.indexOf(SECTIONS[section]);
  assert.ok(from >= 0, `README has the section ${SECTIONS[section]}`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))?.[1] ?? '';
  const lines = block.replace(/\\\n\s*/g, '').split('\n');
  // A comment is `#` after two spaces (no example quotes one).
  return lines.map((l) => l.replace(/\s{2,}#.*$/, '').trim()).filter((l) => /^(id=\$\()?sysrunc-ctl /.test(l) && !NEEDS_A_TERMINAL.test(l));
}

function spawnDaemon(bin: string, args: readonly string[]): void {
  const log = openSync(path.join(WORK, `${bin}.log`), 'a');
  daemons.push(spawn(path.join(REPO_ROOT, 'bin', bin), args, { stdio: ['ignore', log, log], env: { ...process.env, ...mgr.env } }));
  closeSync(log);
}

interface LineRun {
  readonly line: string;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the lines in order; `before` may prepare the host for a line. */
async function runLines(lines: readonly string[], replacements: ReadonlyMap<string, string>, beforeLine?: (line: string) => Promise<void>): Promise<LineRun[]> {
  const idFile = path.join(WORK, 'id');
  writeFileSync(idFile, '');
  const runs: LineRun[] = [];
  for (const original of lines) {
    let line = original.replace(/\[(--json)\]/g, '$1');
    for (const [from, to] of replacements) line = line.split(from).join(to);
    await beforeLine?.(line);
    const script = `id=$(cat '${idFile}')\n${line}\nstatus=$?\nprintf %s "$id" > '${idFile}'\nexit $status`;
    const r = spawnSync('sh', ['-c', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ...mgr.env, PATH: `${path.join(REPO_ROOT, 'bin')}:${process.env.PATH}`, SYSRUNC_DEPOT_SOCKET: DEPOT_SOCKET, SYSRUNC_TENANTS_SOCKET: TENANTS_SOCKET },
    });
    runs.push({ line, status: r.status, stdout: r.stdout, stderr: r.stderr });
  }
  return runs;
}

function assertReplaced(lines: readonly string[], replacements: ReadonlyMap<string, string>): void {
  for (const from of replacements.keys()) assert.ok(lines.some((l) => l.includes(from)), `the README still uses ${from}`);
}

function assertAllRan(runs: readonly LineRun[]): void {
  const failed = runs.filter((r) => r.status !== 0 || /sysrunc-ctl: /.test(r.stderr));
  assert.deepEqual(failed, [], 'every line exits 0 with no error');
}

before(async () => {
  mkdirSync(BASE, { recursive: true });
  mkdirSync(path.join(WORK, 'data'), { recursive: true });
  mgr = await startTestManager({ name: `readme-${TAG}` });
  const r = spawnSync('ip', ['netns', 'add', NETNS], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  spawnDaemon('sysrunc-depotd', ['--socket', DEPOT_SOCKET, '--depot', path.join(BASE, 'depot'), '--runc-root', path.join(BASE, 'depot-runc')]);
  ctrd = await startContainerd({ name: `readme-${TAG}`, runtimeBinary: SYSRUNC, env: mgr.env, namespace: 'acme' });
  spawnDaemon('sysrunc-tenantd', ['--socket', TENANTS_SOCKET, '--containerd', ctrd.address, '--state-dir', path.join(WORK, 'tenants-state'),
    '--runc-root', path.join(BASE, 'tenants-runc'), '--sysrunc', SYSRUNC, '--cgroup-parent', `readme-${TAG}`]);
  for (const connect of [() => DepotClient.connect(DEPOT_SOCKET, 20_000), () => TenantsClient.connect(TENANTS_SOCKET, 20_000)]) (await connect()).close();
});

after(async () => {
  try {
    const tenants = await TenantsClient.connect(TENANTS_SOCKET, 5_000).catch(() => undefined);
    for (const id of ['web', 'db']) await tenants?.call('delete', { ns: 'acme', id }).catch(() => undefined);
    tenants?.close();
    const depot = await DepotClient.connect(DEPOT_SOCKET, 5_000).catch(() => undefined);
    await depot?.call('destroy', { id: 'web' }).catch(() => undefined);
    depot?.close();
  } finally {
    for (const d of daemons) {
      if (d.exitCode !== null || d.signalCode !== null) continue;
      await new Promise<void>((resolve) => {
        d.once('exit', () => resolve());
        d.kill('SIGKILL');
      });
    }
    await ctrd?.stop({ purge: true });
    await sweepManager(mgr.socket).catch(() => undefined);
    await mgr?.dispose();
    spawnSync('ip', ['netns', 'delete', NETNS]);
    if (mountsUnder([BASE, WORK]).length === 0) for (const dir of [BASE, WORK]) rmSync(dir, { recursive: true, force: true });
  }
});

test('the README\'s depot examples run as printed', async () => {
  const rootfs = path.join(WORK, 'depot-rootfs');
  cpSync(await ensureBusyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
  const lines = readmeCommands('depot');
  const replacements = new Map([['/srv/rootfs/busybox', rootfs]]);
  assertReplaced(lines, replacements);
  const runs = await runLines(lines, replacements);
  assertAllRan(runs);
  const exec = runs.find((r) => r.line.startsWith("sysrunc-ctl depot exec web sh -c 'echo hi; exit 3'"));
  assert.equal(exec?.stdout, 'hi\n3\n', 'attached: output, then its exit code');
  const attach = runs.find((r) => r.line.startsWith('sysrunc-ctl depot attach web'));
  assert.equal(attach?.stdout, 'done\n');
  const killed = runs.find((r) => r.line.includes('signal web "$id" KILL'));
  assert.equal(killed?.stdout, '137\n137\n', 'wait prints the exit code of the killed process and exits with it');
});

test('the README\'s tenant examples run as printed', async () => {
  const rootfs = path.join(WORK, 'tenant-rootfs');
  cpSync(await ensureBusyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
  const lines = readmeCommands('tenant');
  const replacements = new Map([['/srv/rootfs/busybox', rootfs], ['/srv/data', path.join(WORK, 'data')], ['acme-net', NETNS]]);
  assertReplaced(lines, replacements);
  const runs = await runLines(lines, replacements, async (line) => {
    // The image the README names, in acme's content store (the namespace exists by then).
    if (line.includes('--image docker.io/library/bb:local')) await ensureContainerdImage(ctrd);
  });
  assertAllRan(runs);
  const exec = runs.find((r) => r.line.startsWith('sysrunc-ctl tenant exec acme db'));
  assert.match(exec?.stdout ?? '', /^uid=0\(root\).*\n3\n$/, 'output, then its exit code');
  const logs = runs.find((r) => r.line.startsWith('sysrunc-ctl tenant logs acme web'));
  assert.equal(logs?.stdout, 'hi\n');
});
