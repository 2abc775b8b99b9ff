// Which part of the prepared config costs runc its time: while one `docker run -d` container of
// each runtime lives (the manager's mounts for the sysrunc one in place), plain runc creates and
// deletes copies of the two configs and of variants of the prepared one, interleaved, timing
// `runc create` alone.
//   node --import tsx bench/runc-variants.ts [--n 15] [--only name,name]
// (the -in-bundle-ns variant runs runc through dist/sysrunc-bundle-exec, as the C client does)
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import { quantile } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '15' }, only: { type: 'string' } } });
const N = Number(values.n);
const WORK = '/tmp/runc-variants';
const ROOT = '/run/runc-variants';
const BUNDLE_EXEC = path.resolve('dist/sysrunc-bundle-exec');

// A config.json as parsed, edited freely here (a bench script: nothing exported).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Config = Record<string, any>;
type Variant = { name: string; config: Config; bundleNs?: boolean };

function variants(docker: Config, prepared: Config): Variant[] {
  const clone = (c: Config): Config => JSON.parse(JSON.stringify(c));
  const withCg = (c: Config, name: string): Config => ({ ...c, linux: { ...c.linux, cgroupsPath: `/runc-variants/${name}` } });
  const v = (name: string, base: Config, edit: (c: Config) => void = () => {}, bundleNs = false): Variant => {
    const c = withCg(clone(base), name);
    edit(c);
    return { name, config: c, ...(bundleNs ? { bundleNs } : {}) };
  };
  const sysExtra = new Set(['/dev/kmsg', '/sys/kernel/debug', '/sys/kernel/tracing', '/sys/fs/fuse/connections', '/dev/hugepages']);
  const all: Variant[] = [
    v('docker', docker),
    v('prepared', prepared),
    v('prepared-in-bundle-ns', prepared, () => {}, true),
    v('prepared-no-extra-mounts', prepared, (c) => (c.mounts = c.mounts.filter((m: Config) => !sysExtra.has(m.destination)))),
    v('prepared-no-kernelfs-tmpfs', prepared, (c) => (c.mounts = c.mounts.filter((m: Config) => !sysExtra.has(m.destination) || m.destination === '/dev/kmsg'))),
    v('prepared-no-kmsg', prepared, (c) => (c.mounts = c.mounts.filter((m: Config) => m.destination !== '/dev/kmsg'))),
    v('prepared-docker-readonly', prepared, (c) => (c.linux.readonlyPaths = docker.linux.readonlyPaths)),
    v('prepared-no-cgroupns', prepared, (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: Config) => n.type !== 'cgroup'))),
    v('prepared-cgroup-ro', prepared, (c) => (c.mounts.find((m: Config) => m.destination === '/sys/fs/cgroup').options = ['ro', 'nosuid', 'noexec', 'nodev'])),
    v('prepared-no-seccomp', prepared, (c) => delete c.linux.seccomp),
    v('docker-no-seccomp', docker, (c) => delete c.linux.seccomp),
    v('prepared-no-userns', prepared, (c) => {
      c.linux.namespaces = c.linux.namespaces.filter((n: Config) => n.type !== 'user');
      delete c.linux.uidMappings;
      delete c.linux.gidMappings;
    }),
    v('docker-with-userns', docker, (c) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = prepared.linux.uidMappings;
      c.linux.gidMappings = prepared.linux.gidMappings;
      c.root = prepared.root;
      c.linux.sysctl = prepared.linux.sysctl;
    }),
  ];
  return values.only === undefined ? all : all.filter((x) => (values.only as string).split(',').includes(x.name));
}

function runcCreate(variant: Variant, bundle: string, preparedCopy: string): number {
  const id = `rv-${variant.name}`;
  const argv = ['--root', ROOT, 'create', '--bundle', bundle, id];
  // The container's init keeps runc's stdio: a file, never a pipe spawnSync would wait on.
  const errFile = path.join(WORK, 'create.err');
  const fd = openSync(errFile, 'w');
  const t0 = performance.now();
  const r = variant.bundleNs === true ? spawnSync(BUNDLE_EXEC, [preparedCopy, bundle, 'runc', ...argv], { stdio: ['ignore', 'ignore', fd] }) : spawnSync('runc', argv, { stdio: ['ignore', 'ignore', fd] });
  const ms = performance.now() - t0;
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${variant.name}: runc create: ${readFileSync(errFile, 'utf8')}`);
  const del = spawnSync('runc', ['--root', ROOT, 'delete', '--force', id], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (del.status !== 0) throw new Error(`${variant.name}: runc delete: ${del.stderr}`);
  return ms;
}

async function main(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const mgr = await startTestManager({ name: 'runc-variants' });
  let d: DockerDaemon | undefined;
  try {
    d = await startDockerd({ name: 'runc-variants', runtimes: { sysrunc: { path: SYSRUNC } }, env: mgr.env });
    await ensureDockerImage(d);
    const runcId = (await d.docker(['run', '-d', '--runtime=runc', 'bb:local', 'sleep', '1000'])).stdout.trim();
    const sysId = (await d.docker(['run', '-d', '--runtime=sysrunc', 'bb:local', 'sleep', '1000'])).stdout.trim();
    const find = (id: string) => spawnSync('sh', ['-c', `ls -d /run/sysrunc-test/runc-variants/containerd/io.containerd.runtime.v2.task/moby/${id}`], { encoding: 'utf8' }).stdout.trim();
    const docker = JSON.parse(readFileSync(path.join(find(runcId), 'config.json'), 'utf8')) as Config;
    const preparedPath = path.join('/run/sysrunc-test/mgr-runc-variants', 'bundles', sysId, 'config.json');
    const prepared = JSON.parse(readFileSync(preparedPath, 'utf8')) as Config;
    const list = variants(docker, prepared);
    const times = new Map<string, number[]>(list.map((x) => [x.name, []]));
    const bundles = new Map<string, string>();
    for (const x of list) {
      const b = path.join(WORK, 'bundles', x.name);
      mkdirSync(b, { recursive: true });
      writeFileSync(path.join(b, 'config.json'), JSON.stringify(x.config));
      bundles.set(x.name, b);
    }
    const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    for (let i = 0; i < N + 2; i++) {
      for (const x of list) {
        const b = bundles.get(x.name) as string;
        const ms = runcCreate(x, b, path.join(b, 'config.json'));
        if (i >= 2) times.get(x.name)?.push(ms);
      }
    }
    const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`load ${load0} -> ${load1}; runc create medians (p25-p75), n=${N}`);
    const base = quantile(times.get('docker') ?? [0], 0.5);
    for (const [name, t] of times) console.log(`${name.padEnd(28)} ${quantile(t, 0.5).toFixed(1).padStart(6)} ms (${quantile(t, 0.25).toFixed(1)}-${quantile(t, 0.75).toFixed(1)})  vs docker ${(quantile(t, 0.5) - base >= 0 ? '+' : '')}${(quantile(t, 0.5) - base).toFixed(1)}`);
    await d.docker(['rm', '-f', runcId, sysId]);
  } finally {
    await d?.stop();
    await mgr.dispose();
    rmSync(WORK, { recursive: true, force: true });
    for (const h of readdirSync('/sys/fs/cgroup')) {
      const dir = path.join('/sys/fs/cgroup', h, 'runc-variants');
      try {
        for (const c of readdirSync(dir, { withFileTypes: true })) if (c.isDirectory()) rmdirSync(path.join(dir, c.name));
        rmdirSync(dir);
      } catch {
        // not there in this hierarchy
      }
    }
  }
}

await main();
