// Debian bookworm system-container test images, built here with debootstrap from the host's apt
// mirror (no registry): `sysrunc-test/dind:local` (dockerd + containerd + runc + busybox-static)
// and `sysrunc-test/systemd:local` (systemd as /sbin/init).
//
// Cache layout under SYSRUNC_TEST_CACHE (default /var/cache/sysrunc-test), shared by all checkouts:
//   debian-debs/{debootstrap,archives,lists}/   downloaded .debs and apt lists, reused by rebuilds
//   debian-base-<hash>/rootfs                   debootstrap --variant=minbase, shared by the flavors
//   debian-<flavor>-<hash>/rootfs               base + flavor packages and config (cp -a of base)
//   debian-*/stamp.json                         written last: its presence means "complete"
//   debian-build.lock                           one build at a time (apt locks its cache dirs anyway)
// <hash> covers the recipe (packages, config files, the entrypoint asset), not the mirror contents.
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import lockfile from 'proper-lockfile';
import type { DockerClient } from './dockerd.ts';
import { cacheDir as defaultCacheDir } from './paths.ts';
import { mountsUnder, pidAlive } from './proc.ts';
import { writeOciImageTar } from './images.ts';

export type DebianFlavor = 'dind' | 'systemd';
export const DEBIAN_FLAVORS: readonly DebianFlavor[] = ['dind', 'systemd'];

export const DEBIAN_IMAGE_TAGS: Readonly<Record<DebianFlavor, string>> = {
  dind: 'sysrunc-test/dind:local',
  systemd: 'sysrunc-test/systemd:local',
};

/**
 * systemd's "halt" signal: give it to `docker run --stop-signal` so `docker stop` shuts the
 * systemd image down cleanly (SIGTERM only makes systemd re-execute itself, so stop would time out).
 * The image cannot carry it: `docker import --change` does not accept STOPSIGNAL.
 */
export const SYSTEMD_STOP_SIGNAL = 'SIGRTMIN+3';

export interface EnsureDebianOptions {
  /** Cache base directory (default: SYSRUNC_TEST_CACHE or /var/cache/sysrunc-test). */
  cacheDir?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** What this process actually did; tests use it to tell a cache hit from a build. */
export const debianBuildCounters = { debootstrap: 0, flavorBuilds: 0, imports: 0 };

export interface DebianStamp {
  kind: 'base' | DebianFlavor;
  hash: string;
  builtAt: string;
  /** Milliseconds per build step. */
  stepsMs: Record<string, number>;
  /** Apparent size of the rootfs tree in bytes (du -sb). */
  sizeBytes: number;
  mirror: string;
}

const SUITE = 'bookworm';
/** Bump to force a rebuild when the code below changes in a way the recipe objects do not show. */
const BASE_VERSION = 1;
const FLAVOR_VERSION = 2;
const ASSETS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets/debian');
const ENV_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LABEL = 'org.sysrunc.test.recipe';
const BUILD_TIMEOUT_MS = 30 * 60_000;
const CHROOT_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
  LC_ALL: 'C',
  LANG: 'C',
  HOME: '/root',
};

// ---------------------------------------------------------------- recipes

/** Config dropped into the base before any package beyond debootstrap's is installed. */
const BASE_FILES: Record<string, string> = {
  // Test images: no docs, man pages or translations (about 1/4 of the size of a minbase).
  'etc/dpkg/dpkg.cfg.d/90sysrunc-test-nodoc': [
    'path-exclude=/usr/share/doc/*',
    'path-include=/usr/share/doc/*/copyright',
    'path-exclude=/usr/share/man/*',
    'path-exclude=/usr/share/info/*',
    'path-exclude=/usr/share/locale/*',
    'path-include=/usr/share/locale/locale.alias',
    'path-exclude=/usr/share/lintian/*',
    '',
  ].join('\n'),
  'etc/apt/apt.conf.d/90sysrunc-test': [
    'APT::Install-Recommends "false";',
    'APT::Install-Suggests "false";',
    'Acquire::Languages "none";',
    '',
  ].join('\n'),
  'etc/hostname': 'sysrunc-test\n',
};

const BASE_RECIPE = {
  v: BASE_VERSION,
  suite: SUITE,
  variant: 'minbase',
  files: BASE_FILES,
  prune: ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale'],
};

/**
 * daemon.json of the dind image. Networking flags (iptables/bridge) are NOT here: dockerd refuses a
 * key given both in the file and as a flag, and the entrypoint decides them at run time
 * (DIND_IPTABLES=false), so tests can switch without a rebuild.
 */
const DIND_DAEMON_JSON = `${JSON.stringify({ 'storage-driver': 'overlay2' }, null, 2)}\n`;

/**
 * Units masked in the systemd image (symlinks to /dev/null in /etc/systemd/system). systemd skips
 * most host-only units by itself in a container (ConditionVirtualization=!container, missing
 * /dev/tty0 for getty@tty1, read-only /sys for udevd). These are the ones it would still try and
 * that cannot work, or have no business running, in a user-namespaced container, so that
 * `systemctl is-system-running` can reach "running" rather than "degraded". The mount units of
 * kernel filesystems a user namespace cannot mount (sys-kernel-debug.mount and the like) are NOT
 * masked: sysrunc itself puts an empty tmpfs there (spec-transform/system-mounts.ts), and this image
 * shows that a stock one boots to "running" with them:
 */
const SYSTEMD_MASKS: Record<string, string> = {
  'systemd-udevd.service': 'no devices to manage; the runtime populates /dev',
  'systemd-udevd-control.socket': 'socket activation of udevd',
  'systemd-udevd-kernel.socket': 'socket activation of udevd',
  'systemd-udev-trigger.service': 'replays kernel uevents: needs udevd and a writable /sys',
  'systemd-udev-settle.service': 'waits for udevd',
  'systemd-modules-load.service': 'loading kernel modules is never allowed from a user namespace',
  'kmod-static-nodes.service': 'creates /dev nodes for modules (mknod is not allowed in a userns)',
  'systemd-journald-audit.socket': 'the audit netlink socket is not available in a userns',
  'proc-sys-fs-binfmt_misc.automount': 'binfmt_misc is host-global (autofs in a userns fails)',
  'proc-sys-fs-binfmt_misc.mount': 'binfmt_misc is host-global',
  'systemd-binfmt.service': 'binfmt_misc is host-global',
  'systemd-firstboot.service': 'would prompt on the console on the first boot (empty machine-id)',
  'getty@tty1.service': 'no virtual terminals in a container (console-getty covers docker run -t)',
  'apt-daily.timer': 'no background downloads in test containers',
  'apt-daily-upgrade.timer': 'no background upgrades in test containers',
  'e2scrub_reap.service': 'no ext4 devices of its own',
  'e2scrub_all.timer': 'no ext4 devices of its own',
  'fstrim.timer': 'no block devices of its own',
};

interface FlavorRecipe {
  packages: string[];
  /** Files written into the rootfs after the packages (path relative to the rootfs -> content, mode). */
  files: Array<{ path: string; content: string; mode: number }>;
  masks: string[];
  defaultTarget?: string;
  /** `docker import --change` instructions. */
  changes: string[];
}

function flavorRecipe(flavor: DebianFlavor): FlavorRecipe {
  if (flavor === 'dind') {
    return {
      packages: ['docker.io', 'iproute2', 'iptables', 'ca-certificates', 'procps', 'busybox-static', 'tini'],
      files: [
        { path: 'etc/docker/daemon.json', content: DIND_DAEMON_JSON, mode: 0o644 },
        { path: 'usr/local/bin/dind-entrypoint', content: readFileSync(path.join(ASSETS, 'dind-entrypoint.sh'), 'utf8'), mode: 0o755 },
      ],
      masks: [],
      changes: ['CMD ["/usr/local/bin/dind-entrypoint"]', `ENV ${ENV_PATH}`],
    };
  }
  return {
    packages: ['systemd', 'systemd-sysv', 'dbus', 'procps', 'iproute2'],
    files: [],
    masks: Object.keys(SYSTEMD_MASKS),
    defaultTarget: 'multi-user.target',
    // container=docker: systemd reads it from PID 1's environment to know it runs in a container.
    // (`docker import --change` rejects STOPSIGNAL: run it with --stop-signal=SYSTEMD_STOP_SIGNAL.)
    changes: ['CMD ["/sbin/init"]', `ENV ${ENV_PATH}`, 'ENV container=docker'],
  };
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);
}

export function baseRecipeHash(): string {
  return hashOf(BASE_RECIPE);
}

/** Hash of everything that goes into a flavor's rootfs (includes the base recipe). */
export function debianRecipeHash(flavor: DebianFlavor): string {
  const { changes: _changes, ...tree } = flavorRecipe(flavor);
  return hashOf({ base: BASE_RECIPE, v: FLAVOR_VERSION, flavor, tree });
}

/** Hash of the image: the rootfs recipe plus the import changes (stored in a label). */
function imageRecipeHash(flavor: DebianFlavor): string {
  return hashOf({ rootfs: debianRecipeHash(flavor), changes: flavorRecipe(flavor).changes });
}

// ---------------------------------------------------------------- mirror

export interface DebianMirrors {
  main: string;
  security: string;
}

/**
 * The Debian mirrors the host's apt uses for bookworm (deb822 .sources and one-line .list files),
 * SYSRUNC_TEST_DEBIAN_MIRROR overriding; falls back to deb.debian.org.
 */
export function hostDebianMirrors(aptDir = '/etc/apt'): DebianMirrors {
  const entries: Array<{ uri: string; suites: string[] }> = [];
  const files: string[] = [];
  try {
    files.push(path.join(aptDir, 'sources.list'));
    for (const f of readdirSync(path.join(aptDir, 'sources.list.d')).sort()) files.push(path.join(aptDir, 'sources.list.d', f));
  } catch {
    // no sources.list.d
  }
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        let last: string | undefined;
        for (const line of stanza.split('\n')) {
          if (line.startsWith('#')) continue;
          const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
          if (m?.[1] !== undefined) {
            last = m[1].toLowerCase();
            fields.set(last, m[2] ?? '');
          } else if (/^\s/.test(line) && last !== undefined) {
            fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`);
          }
        }
        if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
        if ((fields.get('enabled') ?? 'yes').trim() === 'no') continue;
        const suites = (fields.get('suites') ?? '').split(/\s+/).filter((s) => s !== '');
        for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter((s) => s !== '')) entries.push({ uri, suites });
      }
    } else if (file.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim();
        const [type, uri, suite] = line.split(/\s+/);
        if (type === 'deb' && uri !== undefined && suite !== undefined) entries.push({ uri, suites: [suite] });
      }
    }
  }
  const strip = (u: string): string => u.replace(/\/+$/, '');
  const main = process.env['SYSRUNC_TEST_DEBIAN_MIRROR'] ?? entries.find((e) => e.suites.includes(SUITE))?.uri ?? 'http://deb.debian.org/debian';
  const security =
    process.env['SYSRUNC_TEST_DEBIAN_SECURITY_MIRROR'] ??
    entries.find((e) => e.suites.includes(`${SUITE}-security`))?.uri ??
    'http://deb.debian.org/debian-security';
  return { main: strip(main), security: strip(security) };
}

// ---------------------------------------------------------------- helpers

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function readStamp(dir: string): Promise<DebianStamp | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, 'stamp.json'), 'utf8')) as DebianStamp;
  } catch {
    return undefined;
  }
}

function tmpSuffix(): string {
  return `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

interface Ctx {
  base: string;
  debs: string;
  log: (line: string) => void;
  logFile: string;
  mirrors: DebianMirrors;
}

/** Build commands in flight, killed by the signal guard. */
const activeChildren = new Set<{ kill(signal: NodeJS.Signals): boolean }>();

/**
 * While `dir` may have mounts below it: on SIGINT/SIGTERM/SIGHUP (whose default action would skip
 * every finally block) or process exit, kill the build commands and lazily unmount everything
 * there, synchronously, then let the signal take its course. A SIGKILLed build leaves its mounts to
 * the next build (removeStaleTmp). Returns the disarm function.
 */
function guardMounts(dir: string): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const cleanupNow = (): void => {
    for (const child of activeChildren) child.kill('SIGKILL');
    for (const mp of mountsUnder([dir]).reverse()) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanupNow();
    disarm();
    // Without our listener the signal's previous behaviour applies (default: terminate).
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const disarm = (): void => {
    for (const sig of signals) process.off(sig, onSignal);
    process.off('exit', cleanupNow);
  };
  for (const sig of signals) process.on(sig, onSignal);
  process.on('exit', cleanupNow);
  return disarm;
}

/** Runs a command with output appended to the build log; on failure the error carries its tail. */
async function runLogged(ctx: Ctx, file: string, args: string[], env?: Record<string, string>): Promise<void> {
  await writeFile(ctx.logFile, `\n$ ${file} ${args.join(' ')}\n`, { flag: 'a' });
  const child = execa(file, args, {
    stdin: 'ignore',
    stdout: { file: ctx.logFile, append: true },
    stderr: { file: ctx.logFile, append: true },
    reject: false,
    timeout: BUILD_TIMEOUT_MS,
    forceKillAfterDelay: 5000,
    ...(env !== undefined ? { env, extendEnv: false } : {}),
  });
  activeChildren.add(child);
  const r = await child.finally(() => activeChildren.delete(child));
  if (r.exitCode !== 0) {
    const log = await readFile(ctx.logFile, 'utf8').catch(() => '');
    const tail = log.split('\n').slice(-40).join('\n');
    throw new Error(`${file} ${args.join(' ')} failed (${r.exitCode ?? r.signal}); tail of ${ctx.logFile}:\n${tail}`);
  }
}

function inChroot(ctx: Ctx, root: string, args: string[]): Promise<void> {
  return runLogged(ctx, 'chroot', [root, ...args], CHROOT_ENV);
}

/** Unmounts everything at or below `dir` (deepest first); throws if anything is left. */
async function unmountAll(dir: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const mounts = mountsUnder([dir]).reverse();
    if (mounts.length === 0) return;
    for (const mp of mounts) {
      const r = await execa('umount', [mp], { reject: false });
      if (r.exitCode !== 0) await execa('umount', ['-l', mp], { reject: false });
    }
  }
  const left = mountsUnder([dir]);
  if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
}

/** rm -rf, but only once nothing is mounted below (a bind of the .deb cache must not be emptied). */
async function removeTree(dir: string): Promise<void> {
  await unmountAll(dir);
  await rm(dir, { recursive: true, force: true });
}

/** Removes `debian-*.tmp-<pid>-*` dirs of dead builders (called with the build lock held). */
async function removeStaleTmp(base: string): Promise<void> {
  for (const name of await readdir(base).catch(() => [] as string[])) {
    const m = /^debian-.*\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
    if (m?.[1] === undefined) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && pidAlive(pid)) continue;
    await removeTree(path.join(base, name));
  }
}

async function duBytes(dir: string): Promise<number> {
  const r = await execa('du', ['-sb', '--one-file-system', dir]);
  return Number.parseInt(r.stdout.split('\t')[0] ?? '0', 10);
}

async function timed(ctx: Ctx, steps: Record<string, number>, name: string, fn: () => Promise<void>): Promise<void> {
  const start = performance.now();
  ctx.log(`${name} ...`);
  await fn();
  const ms = Math.round(performance.now() - start);
  steps[name] = ms;
  ctx.log(`${name}: ${(ms / 1000).toFixed(1)} s`);
}

async function writeRootfsFile(root: string, rel: string, content: string, mode = 0o644): Promise<void> {
  const dest = path.join(root, rel);
  await mkdir(path.dirname(dest), { recursive: true });
  await rm(dest, { force: true }); // may be a symlink (e.g. resolv.conf)
  await writeFile(dest, content, { mode });
  await chmod(dest, mode);
}

/** Atomically publishes a finished `<tmp>` as `<dir>` (stamp written last, inside tmp). */
async function publish(tmp: string, dir: string, stamp: DebianStamp): Promise<void> {
  await writeFile(path.join(tmp, 'stamp.json'), `${JSON.stringify(stamp, null, 2)}\n`);
  if (await exists(dir)) {
    // An incomplete dir (no stamp) left by a crash between rename and stamp cannot exist (the stamp
    // is in tmp before the rename), but a dir from an older layout might: move it aside first.
    const old = `${dir}${tmpSuffix()}`;
    await rename(dir, old);
    await removeTree(old);
  }
  await rename(tmp, dir);
}

// ---------------------------------------------------------------- build steps

function sourcesList(m: DebianMirrors): string {
  return [
    `deb ${m.main} ${SUITE} main`,
    `deb ${m.main} ${SUITE}-updates main`,
    `deb ${m.security} ${SUITE}-security main`,
    '',
  ].join('\n');
}

async function buildBase(ctx: Ctx, dir: string): Promise<void> {
  const tmp = `${dir}${tmpSuffix()}`;
  const root = path.join(tmp, 'rootfs');
  const steps: Record<string, number> = {};
  const debootstrapCache = path.join(ctx.debs, 'debootstrap');
  await mkdir(root, { recursive: true });
  await mkdir(debootstrapCache, { recursive: true });
  try {
    const disarm = guardMounts(tmp);
    try {
      await timed(ctx, steps, 'base: debootstrap', async () => {
        debianBuildCounters.debootstrap++;
        await runLogged(ctx, 'debootstrap', [
          `--variant=${BASE_RECIPE.variant}`,
          `--cache-dir=${debootstrapCache}`,
          '--components=main',
          '--merged-usr',
          SUITE,
          root,
          ctx.mirrors.main,
        ]);
      });
    } finally {
      await unmountAll(tmp); // debootstrap mounts /proc and /sys in the target
      disarm();
    }
    await timed(ctx, steps, 'base: configure', async () => {
      for (const [rel, content] of Object.entries(BASE_RECIPE.files)) await writeRootfsFile(root, rel, content);
      for (const rel of BASE_RECIPE.prune) {
        // Keep the directories (packages expect them), drop what dpkg has already unpacked there.
        const d = path.join(root, rel);
        for (const entry of await readdir(d).catch(() => [] as string[])) {
          if (rel === 'usr/share/locale' && entry === 'locale.alias') continue;
          await rm(path.join(d, entry), { recursive: true, force: true });
        }
      }
      await writeRootfsFile(root, 'etc/apt/sources.list', sourcesList(ctx.mirrors));
      await rm(path.join(root, 'etc/apt/sources.list.d'), { recursive: true, force: true });
      await mkdir(path.join(root, 'etc/apt/sources.list.d'), { recursive: true });
      await rm(path.join(root, 'var/cache/apt/archives'), { recursive: true, force: true });
      await mkdir(path.join(root, 'var/cache/apt/archives/partial'), { recursive: true });
      await removeAptLists(root);
    });
    const stamp: DebianStamp = {
      kind: 'base',
      hash: baseRecipeHash(),
      builtAt: new Date().toISOString(),
      stepsMs: steps,
      sizeBytes: await duBytes(root),
      mirror: ctx.mirrors.main,
    };
    ctx.log(`base: rootfs ${(stamp.sizeBytes / 1e6).toFixed(0)} MB`);
    await publish(tmp, dir, stamp);
  } finally {
    await removeTree(tmp);
  }
}

async function removeAptLists(root: string): Promise<void> {
  const lists = path.join(root, 'var/lib/apt/lists');
  await rm(lists, { recursive: true, force: true });
  await mkdir(path.join(lists, 'partial'), { recursive: true });
}

/** Mounts for apt in the chroot: /proc, the shared .deb cache and the shared lists. */
async function withChrootMounts(ctx: Ctx, root: string, fn: () => Promise<void>): Promise<void> {
  const binds: Array<[string, string]> = [
    [path.join(ctx.debs, 'archives'), 'var/cache/apt/archives'],
    [path.join(ctx.debs, 'lists'), 'var/lib/apt/lists'],
  ];
  const disarm = guardMounts(root);
  try {
    await execa('mount', ['-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', path.join(root, 'proc')]);
    for (const [src, rel] of binds) {
      await mkdir(path.join(src, 'partial'), { recursive: true });
      await mkdir(path.join(root, rel), { recursive: true });
      await execa('mount', ['--bind', src, path.join(root, rel)]);
      await execa('mount', ['--make-private', path.join(root, rel)]);
    }
    await fn();
  } finally {
    await unmountAll(root);
    disarm();
  }
}

async function buildFlavor(ctx: Ctx, flavor: DebianFlavor, baseDir: string, dir: string): Promise<void> {
  const recipe = flavorRecipe(flavor);
  const tmp = `${dir}${tmpSuffix()}`;
  const root = path.join(tmp, 'rootfs');
  const steps: Record<string, number> = {};
  await mkdir(tmp, { recursive: true });
  debianBuildCounters.flavorBuilds++;
  try {
    await timed(ctx, steps, `${flavor}: copy base`, () => runLogged(ctx, 'cp', ['-a', '--reflink=auto', path.join(baseDir, 'rootfs'), root]));
    // No service may start while packages are installed (invoke-rc.d / deb-systemd-invoke honour it).
    await writeRootfsFile(root, 'usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n', 0o755);
    await writeRootfsFile(root, 'etc/resolv.conf', await readFile('/etc/resolv.conf', 'utf8'));
    await withChrootMounts(ctx, root, async () => {
      await timed(ctx, steps, `${flavor}: apt-get update`, () => inChroot(ctx, root, ['apt-get', 'update', '-q']));
      await timed(ctx, steps, `${flavor}: apt-get install (${recipe.packages.join(' ')})`, () =>
        inChroot(ctx, root, ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...recipe.packages]),
      );
    });
    await timed(ctx, steps, `${flavor}: configure`, async () => {
      for (const f of recipe.files) await writeRootfsFile(root, f.path, f.content, f.mode);
      for (const unit of recipe.masks) {
        const link = path.join(root, 'etc/systemd/system', unit);
        await mkdir(path.dirname(link), { recursive: true });
        await rm(link, { force: true });
        await symlink('/dev/null', link);
      }
      if (recipe.defaultTarget !== undefined) {
        const link = path.join(root, 'etc/systemd/system/default.target');
        await rm(link, { force: true });
        await symlink(`/lib/systemd/system/${recipe.defaultTarget}`, link);
      }
      // Per-container identity: systemd makes up a machine-id at boot when the file is empty.
      if (await exists(path.join(root, 'etc/machine-id'))) await writeRootfsFile(root, 'etc/machine-id', '', 0o444);
      await rm(path.join(root, 'var/lib/dbus/machine-id'), { force: true });
      await unlink(path.join(root, 'usr/sbin/policy-rc.d'));
      await writeRootfsFile(root, 'etc/resolv.conf', ''); // the runtime bind-mounts its own
      await writeRootfsFile(root, 'etc/hostname', 'sysrunc-test\n');
      for (const rel of ['var/log/apt', 'var/cache/debconf', 'var/cache/ldconfig', 'tmp', 'var/tmp']) {
        const d = path.join(root, rel);
        for (const entry of await readdir(d).catch(() => [] as string[])) {
          if (rel === 'var/cache/debconf' && !entry.endsWith('-old')) continue;
          await rm(path.join(d, entry), { recursive: true, force: true });
        }
      }
      await removeAptLists(root);
      for (const bin of ['pkgcache.bin', 'srcpkgcache.bin']) await rm(path.join(root, 'var/cache/apt', bin), { force: true });
    });
    const stamp: DebianStamp = {
      kind: flavor,
      hash: debianRecipeHash(flavor),
      builtAt: new Date().toISOString(),
      stepsMs: steps,
      sizeBytes: await duBytes(root),
      mirror: ctx.mirrors.main,
    };
    ctx.log(`${flavor}: rootfs ${(stamp.sizeBytes / 1e6).toFixed(0)} MB`);
    await publish(tmp, dir, stamp);
  } finally {
    await removeTree(tmp);
  }
}

// ---------------------------------------------------------------- public API

export interface DebianCachePaths {
  base: string;
  /** debian-base-<hash> */
  baseDir: string;
  /** debian-<flavor>-<hash> */
  dir: string;
  rootfs: string;
  stamp: string;
}

export function debianCachePaths(flavor: DebianFlavor, opts: EnsureDebianOptions = {}): DebianCachePaths {
  const base = opts.cacheDir ?? defaultCacheDir();
  const dir = path.join(base, `debian-${flavor}-${debianRecipeHash(flavor)}`);
  return {
    base,
    baseDir: path.join(base, `debian-base-${baseRecipeHash()}`),
    dir,
    rootfs: path.join(dir, 'rootfs'),
    stamp: path.join(dir, 'stamp.json'),
  };
}

/** The stamp of a completed flavor build, or undefined when none is cached. */
export async function readDebianStamp(flavor: DebianFlavor, opts: EnsureDebianOptions = {}): Promise<DebianStamp | undefined> {
  const stamp = await readStamp(debianCachePaths(flavor, opts).dir);
  return stamp?.hash === debianRecipeHash(flavor) ? stamp : undefined;
}

/**
 * Builds (once; cached, see the file header) the Debian bookworm rootfs of `flavor` and returns its
 * path, `<cache>/debian-<flavor>-<hash>/rootfs`. Needs root and Debian's mirror. Safe to call
 * concurrently from several processes (one builds, the others wait for the lock).
 */
export async function ensureDebianRootfs(flavor: DebianFlavor, opts: EnsureDebianOptions = {}): Promise<string> {
  const p = debianCachePaths(flavor, opts);
  if ((await readStamp(p.dir))?.hash === debianRecipeHash(flavor)) return p.rootfs;

  await mkdir(p.base, { recursive: true });
  const log = opts.log ?? ((line: string) => process.stderr.write(`[debian-images] ${line}\n`));
  const lockPath = path.join(p.base, 'debian-build.lock');
  log(`${flavor}: not cached, taking ${lockPath}`);
  const release = await lockfile.lock(p.base, {
    lockfilePath: lockPath,
    stale: 30_000, // a SIGKILLed builder's lock is taken over after this long
    update: 5_000,
    retries: { retries: Math.ceil(BUILD_TIMEOUT_MS / 5000), factor: 1, minTimeout: 5000, maxTimeout: 5000 },
  });
  try {
    if ((await readStamp(p.dir))?.hash === debianRecipeHash(flavor)) return p.rootfs; // built meanwhile
    await removeStaleTmp(p.base);
    const debs = path.join(p.base, 'debian-debs');
    const ctx: Ctx = { base: p.base, debs, log, logFile: path.join(p.base, 'debian-build.log'), mirrors: hostDebianMirrors() };
    const logSize = (await stat(ctx.logFile).catch(() => undefined))?.size ?? 0;
    const header = `# ${new Date().toISOString()} build of ${flavor} (pid ${process.pid})\n`;
    await writeFile(ctx.logFile, header, { flag: logSize > 8e6 ? 'w' : 'a' }); // keep it bounded
    log(`building ${flavor} rootfs in ${p.dir} (mirror ${ctx.mirrors.main}, log ${ctx.logFile})`);
    if ((await readStamp(p.baseDir))?.hash !== baseRecipeHash()) await buildBase(ctx, p.baseDir);
    await buildFlavor(ctx, flavor, p.baseDir, p.dir);
    return p.rootfs;
  } finally {
    await release();
  }
}

/**
 * Imports the flavor's rootfs into the daemon as `tag` (default DEBIAN_IMAGE_TAGS[flavor]) unless
 * an image with that tag from the same recipe is already there; builds the rootfs first if needed.
 * The tree is streamed (`tar --numeric-owner --xattrs -C rootfs -c .` into `docker import -`)
 * through a FIFO, so any DockerClient works and no tarball is written. Returns the image id.
 */
export async function ensureDebianImage(
  docker: DockerClient,
  flavor: DebianFlavor,
  tag: string = DEBIAN_IMAGE_TAGS[flavor],
  opts: EnsureDebianOptions = {},
): Promise<string> {
  const want = imageRecipeHash(flavor);
  const have = await docker.docker(['image', 'inspect', '--format', `{{.Id}} {{index .Config.Labels "${LABEL}"}}`, tag], { reject: false });
  if (have.exitCode === 0) {
    const [id, label] = have.stdout.trim().split(' ');
    if (id !== undefined && label === want) return id;
  }
  const rootfs = await ensureDebianRootfs(flavor, opts);
  const changes = [...flavorRecipe(flavor).changes, `LABEL ${LABEL}=${want}`].flatMap((c) => ['--change', c]);

  const work = await mkdirTemp();
  const fifo = path.join(work, 'rootfs.tar');
  await execa('mkfifo', ['-m', '600', fifo]);
  const tar = execa('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', rootfs, '-cf', fifo, '.'], {
    stdin: 'ignore',
    reject: false,
    timeout: BUILD_TIMEOUT_MS,
  });
  try {
    debianBuildCounters.imports++;
    const r = await docker.docker(['import', ...changes, '-', tag], { inputFile: fifo, reject: false, timeoutMs: BUILD_TIMEOUT_MS });
    if (r.exitCode !== 0) throw new Error(`docker import of ${rootfs} as ${tag} failed (${r.exitCode}): ${r.stderr}`);
    const t = await tar;
    if (t.exitCode !== 0) throw new Error(`tar of ${rootfs} failed (${t.exitCode ?? t.signal}): ${t.stderr}`);
    return r.stdout.trim();
  } finally {
    tar.kill('SIGKILL'); // no-op once it exited; unblocks a tar still waiting for a reader
    await tar.catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

async function mkdirTemp(): Promise<string> {
  const dir = path.join(tmpdir(), `sysrunc-debimg${tmpSuffix()}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Removes cached debian-* trees whose recipe is not the current one (not the .deb cache). */
export async function pruneDebianCache(opts: EnsureDebianOptions = {}): Promise<string[]> {
  const base = opts.cacheDir ?? defaultCacheDir();
  const keep = new Set([`debian-base-${baseRecipeHash()}`, ...DEBIAN_FLAVORS.map((f) => `debian-${f}-${debianRecipeHash(f)}`)]);
  const removed: string[] = [];
  for (const name of await readdir(base).catch(() => [] as string[])) {
    if (!/^debian-(base|dind|systemd)-[0-9a-f]{12}$/.test(name) || keep.has(name)) continue;
    await removeTree(path.join(base, name));
    removed.push(name);
  }
  return removed;
}

/**
 * An OCI image-layout tar of the flavor's rootfs named `ref` (for `ctr images import`, e.g. into
 * containerd's CRI namespace), cached beside the rootfs: one uncompressed layer, the recipe's CMD.
 */
export async function ensureDebianOciTar(flavor: DebianFlavor, ref: string, opts: EnsureDebianOptions = {}): Promise<string> {
  const rootfs = await ensureDebianRootfs(flavor, opts);
  const p = debianCachePaths(flavor, opts);
  const out = path.join(p.dir, `oci-${ref.replace(/[^A-Za-z0-9_.-]+/g, '_')}.tar`);
  if ((await stat(out).catch(() => undefined)) !== undefined) return out;
  const layer = path.join(p.dir, 'layer.tar');
  if ((await stat(layer).catch(() => undefined)) === undefined) {
    const tmp = `${layer}.tmp-${process.pid}`;
    await execa('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--sort=name', '-C', rootfs, '-cf', tmp, '.'], { timeout: BUILD_TIMEOUT_MS });
    await rename(tmp, layer);
  }
  const cmd = flavorRecipe(flavor).changes.find((c) => c.startsWith('CMD '));
  await writeOciImageTar(layer, out, ref, cmd === undefined ? ['sh'] : (JSON.parse(cmd.slice(4)) as string[]));
  return out;
}
