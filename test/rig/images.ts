// Test images built from busybox-static: a rootfs tree, its tar, a docker image, an OCI image tar
// for containerd, and plain OCI bundles for direct runtime tests. No registry involved.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerClient } from './dockerd.ts';
import { execTool, type ExecOptions, type ExecResult } from './exec.ts';
import { bins, cacheDir } from './paths.ts';

/** Bump when the tree layout changes so cached trees get rebuilt. */
const LAYOUT_VERSION = 1;
const STAMP = '.sysrunc-rig-stamp';
const ENV_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function run(file: string, args: string[], opts?: ExecOptions): Promise<ExecResult> {
  return execTool(file, args, process.env, opts);
}

function tmpName(p: string): string {
  return `${p}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

async function busyboxStamp(): Promise<string> {
  const s = await stat(bins.busybox);
  return JSON.stringify({ v: LAYOUT_VERSION, busybox: bins.busybox, size: s.size, mtimeMs: s.mtimeMs });
}

async function assertStatic(bin: string): Promise<void> {
  const fh = await open(bin, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(8192), 0, 8192, 0);
    if (buffer.subarray(0, bytesRead).includes('ld-linux')) {
      throw new Error(`${bin} is dynamically linked; install busybox-static (or set SYSRUNC_TEST_BUSYBOX)`);
    }
  } finally {
    await fh.close();
  }
}

async function buildTree(root: string): Promise<void> {
  await assertStatic(bins.busybox);
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'home', 'proc', 'sys', 'dev', 'run', 'var/log']) {
    await mkdir(path.join(root, dir), { recursive: true, mode: 0o755 });
  }
  for (const dir of ['tmp', 'var/tmp']) {
    await mkdir(path.join(root, dir), { recursive: true });
    await chmod(path.join(root, dir), 0o1777);
  }
  await chmod(path.join(root, 'root'), 0o700);
  await copyFile(bins.busybox, path.join(root, 'bin/busybox'));
  await chmod(path.join(root, 'bin/busybox'), 0o755);
  // --list-full gives each applet's canonical dir; `busybox --install -s` would link to the host path.
  const list = await run(bins.busybox, ['--list-full']);
  for (const applet of list.stdout.split('\n')) {
    if (applet === '' || applet === 'linuxrc' || applet.endsWith('/busybox')) continue;
    const dest = path.join(root, applet);
    await mkdir(path.dirname(dest), { recursive: true });
    if (!(await exists(dest))) await symlink('/bin/busybox', dest);
  }
  const files: Record<string, string> = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    'etc/group': 'root:x:0:\nnobody:x:65534:\n',
    'etc/hostname': 'busybox\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n',
    'etc/resolv.conf': '',
  };
  for (const [rel, content] of Object.entries(files)) {
    await writeFile(path.join(root, rel), content, { mode: 0o644 });
  }
}

/**
 * Builds (once, cached) a busybox-static rootfs tree under `dir` (default: SYSRUNC_TEST_CACHE or
 * /var/cache/sysrunc-test) and returns its path, `<dir>/busybox-rootfs`. Safe to call concurrently.
 */
export async function ensureBusyboxRootfs(dir: string = cacheDir()): Promise<string> {
  const target = path.join(dir, 'busybox-rootfs');
  const want = await busyboxStamp();
  const have = await readFile(path.join(target, STAMP), 'utf8').catch(() => undefined);
  if (have === want) return target;
  await mkdir(dir, { recursive: true });
  const tmp = tmpName(target);
  try {
    await buildTree(tmp);
    await writeFile(path.join(tmp, STAMP), want);
    if (have !== undefined || (await exists(target))) {
      const old = tmpName(`${target}.old`);
      await rename(target, old).catch(() => undefined);
      await rm(old, { recursive: true, force: true });
    }
    await rename(tmp, target).catch(async (err: unknown) => {
      // Another process won the race with an identical tree.
      const now = await readFile(path.join(target, STAMP), 'utf8').catch(() => undefined);
      if (now !== want) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return target;
}

/** `<rootfs>.tar` of the tree (numeric owners, sorted), rebuilt when the tree is newer. */
export async function ensureRootfsTar(rootfs: string): Promise<string> {
  const out = `${rootfs}.tar`;
  const [tree, tar] = await Promise.all([stat(path.join(rootfs, STAMP)), stat(out).catch(() => undefined)]);
  if (tar !== undefined && tar.mtimeMs >= tree.mtimeMs) return out;
  const tmp = tmpName(out);
  await run('tar', ['--numeric-owner', '--sort=name', `--exclude=./${STAMP}`, '-C', rootfs, '-cf', tmp, '.']);
  await rename(tmp, out);
  return out;
}

/**
 * Imports the busybox rootfs into the daemon as `tag` (CMD ["sh"]) unless the tag already exists.
 * Returns the image id.
 */
export async function ensureDockerImage(docker: DockerClient, tag = 'bb:local'): Promise<string> {
  const have = await docker.docker(['image', 'inspect', '--format', '{{.Id}}', tag], { reject: false });
  if (have.exitCode === 0) return have.stdout.trim();
  const tar = await ensureRootfsTar(await ensureBusyboxRootfs());
  const r = await docker.docker(['import', '--change', 'CMD ["sh"]', '--change', `ENV ${ENV_PATH}`, tar, tag]);
  return r.stdout.trim();
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

/**
 * An OCI image-layout tar (one uncompressed layer = the busybox rootfs) that `ctr image import`
 * names `ref` through the io.containerd.image.name annotation. Cached next to the rootfs.
 */
export async function ensureOciImageTar(ref = 'docker.io/library/bb:local', dir: string = cacheDir(), cmd: readonly string[] = ['sh']): Promise<string> {
  const layerTar = await ensureRootfsTar(await ensureBusyboxRootfs(dir));
  const out = path.join(dir, `oci-${ref.replace(/[^A-Za-z0-9_.-]+/g, '_')}.tar`);
  const [layerStat, outStat] = await Promise.all([stat(layerTar), stat(out).catch(() => undefined)]);
  if (outStat !== undefined && outStat.mtimeMs >= layerStat.mtimeMs) return out;
  await writeOciImageTar(layerTar, out, ref, cmd);
  return out;
}

/** Writes `out`: an OCI image-layout tar of one uncompressed layer, named `ref`, running `cmd` (as `user`, if given). */
export async function writeOciImageTar(layerTar: string, out: string, ref: string, cmd: readonly string[], user?: string): Promise<void> {
  const layerStat = await stat(layerTar);
  const stage = tmpName(out.replace(/\.tar$/, ''));
  const blobs = path.join(stage, 'blobs/sha256');
  await mkdir(blobs, { recursive: true });
  try {
    const layerHex = await sha256File(layerTar);
    await link(layerTar, path.join(blobs, layerHex)).catch(() => copyFile(layerTar, path.join(blobs, layerHex)));
    const addBlob = async (json: unknown): Promise<{ digest: string; size: number }> => {
      const data = Buffer.from(JSON.stringify(json));
      const hex = createHash('sha256').update(data).digest('hex');
      await writeFile(path.join(blobs, hex), data);
      return { digest: `sha256:${hex}`, size: data.length };
    };
    const platform = { architecture: goArch(), os: 'linux' };
    const config = await addBlob({
      ...platform,
      config: { Cmd: [...cmd], Env: [ENV_PATH], ...(user === undefined ? {} : { User: user }) },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
    });
    const manifest = await addBlob({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerHex}`, size: layerStat.size }],
    });
    const tag = ref.slice(ref.lastIndexOf(':') + 1);
    await writeFile(
      path.join(stage, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform,
            annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    await writeFile(path.join(stage, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const tmp = tmpName(out);
    await run('tar', ['--numeric-owner', '-C', stage, '-cf', tmp, 'oci-layout', 'index.json', 'blobs']);
    await rename(tmp, out);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** Anything that can run ctr commands against a containerd. */
export interface CtrClient {
  ctr(args: string[], opts?: ExecOptions): Promise<ExecResult>;
}

/** Imports the busybox OCI image into the containerd namespace as `ref` unless present. */
export async function ensureContainerdImage(ctrd: CtrClient, ref = 'docker.io/library/bb:local', cmd?: readonly string[], imageTar?: () => Promise<string>): Promise<string> {
  const ls = await ctrd.ctr(['images', 'ls', '-q']);
  if (ls.stdout.split('\n').includes(ref)) return ref;
  await ctrd.ctr(['images', 'import', await (imageTar ?? (() => ensureOciImageTar(ref, cacheDir(), cmd)))()], { timeoutMs: 600_000 });
  return ref;
}

export interface Bundle {
  /** Bundle directory (pass as `runc run --bundle`). */
  bundle: string;
  /** <bundle>/config.json */
  config: string;
  /** <bundle>/rootfs, an independent copy. */
  rootfs: string;
}

export interface BundleOptions {
  /** root.readonly (default false, unlike `runc spec`). */
  readonly?: boolean;
}

/**
 * An OCI bundle from plain `runc spec` (not --rootless) with terminal=false, the given args and a
 * private copy (cp -a) of `rootfsSource`. `dir` is created or reused (config.json and rootfs replaced).
 */
export async function makeBundle(dir: string, rootfsSource: string, args: string[], opts: BundleOptions = {}): Promise<Bundle> {
  const config = path.join(dir, 'config.json');
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(dir, { recursive: true });
  await rm(config, { force: true });
  await rm(rootfs, { recursive: true, force: true });
  await run(bins.runc, ['spec', '--bundle', dir]);
  const spec = JSON.parse(await readFile(config, 'utf8')) as {
    process: { terminal?: boolean; args?: string[] };
    root: { path: string; readonly?: boolean };
  };
  spec.process.terminal = false;
  spec.process.args = args;
  spec.root = { path: 'rootfs', readonly: opts.readonly ?? false };
  await writeFile(config, `${JSON.stringify(spec, null, 2)}\n`);
  await run('cp', ['-a', '--', rootfsSource, rootfs]);
  await rm(path.join(rootfs, STAMP), { force: true });
  return { bundle: dir, config, rootfs };
}
