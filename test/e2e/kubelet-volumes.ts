// A pod's volumes made on the host the way kubelet makes them, for CRI tests without a kubelet:
// <pods dir>/<pod uid>/volumes/kubernetes.io~<kind>/<name>, the pods dir 0750 root. configMap,
// secret and projected volumes are written as kubelet's atomic writer does (a timestamped dir,
// a `..data` symlink to it, one symlink per key); secret and projected ones on a tmpfs.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KUBELET_PODS_DIR } from '../../src/spec-transform/pod-volumes.ts';

export interface PodVolumes {
  readonly emptyDir: string;
  readonly configMap: string;
  readonly secret: string;
  readonly projected: string;
  /** A hostPath: a host directory owned by root, mode 0700, with one file. */
  readonly hostPathPrivate: string;
  /** The same directory, named through a symlink (containerd resolves it). */
  readonly hostPathSymlink: string;
  remove(): void;
}

export const SECRET_TEXT = 's3cret';
export const CONFIG_TEXT = 'config-value';
export const TOKEN_TEXT = 'token-value';

function atomicWriter(dir: string, files: Record<string, string>, mode: number): void {
  const data = path.join(dir, '..2026_12_05_00_00_00.000000001');
  mkdirSync(data, { mode: 0o755 });
  for (const [key, text] of Object.entries(files)) {
    writeFileSync(path.join(data, key), text);
    chmodSync(path.join(data, key), mode);
    symlinkSync(path.join('..data', key), path.join(dir, key));
  }
  symlinkSync(path.basename(data), path.join(dir, '..data'));
}

/** Makes kubelet's pods dir if there is none; returns how to remove what it made (once it is empty again). */
export function ensureKubeletPodsDir(): () => void {
  const kubeletRoot = path.dirname(KUBELET_PODS_DIR);
  const made = [KUBELET_PODS_DIR, kubeletRoot].filter((d) => !existsSync(d));
  mkdirSync(KUBELET_PODS_DIR, { recursive: true, mode: 0o750 });
  return () => {
    for (const d of made) spawnSync('rmdir', [d]);
  };
}

export function makePodVolumes(podUid: string, scratch: string): PodVolumes {
  mkdirSync(KUBELET_PODS_DIR, { recursive: true, mode: 0o750 });
  const volumes = path.join(KUBELET_PODS_DIR, podUid, 'volumes');
  const dir = (kind: string, name: string, mode: number): string => {
    const d = path.join(volumes, `kubernetes.io~${kind}`, name);
    mkdirSync(d, { recursive: true, mode: 0o750 });
    chmodSync(d, mode);
    return d;
  };
  const emptyDir = dir('empty-dir', 'cache', 0o777);
  const configMap = dir('configmap', 'settings', 0o755);
  atomicWriter(configMap, { 'app.conf': CONFIG_TEXT }, 0o644);
  const tmpfs = (d: string): void => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', d]);
  };
  const secret = dir('secret', 'credentials', 0o755);
  tmpfs(secret);
  atomicWriter(secret, { password: SECRET_TEXT }, 0o400);
  const projected = dir('projected', 'kube-api-access', 0o755);
  tmpfs(projected);
  atomicWriter(projected, { token: TOKEN_TEXT }, 0o600);
  const hostPathPrivate = path.join(scratch, 'host-private');
  mkdirSync(hostPathPrivate, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(hostPathPrivate, 'data'), 'host data\n');
  const hostPathSymlink = path.join(scratch, 'host-link');
  symlinkSync(hostPathPrivate, hostPathSymlink);
  return {
    emptyDir, configMap, secret, projected, hostPathPrivate, hostPathSymlink,
    remove() {
      for (const d of [secret, projected]) spawnSync('umount', [d]);
      rmSync(path.join(KUBELET_PODS_DIR, podUid), { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
