// An image already in the tenant's content store: its config (env, working dir) and the snapshot
// its layers were unpacked into (the chain id of its diff ids), from which a container's rootfs
// snapshot is prepared. containerd's Images, Content and Snapshots services only.
import { createHash } from 'node:crypto';
import { TenantError } from '../tenants-api/v1.ts';
import { isNotFound, type ContainerdClient } from './containerd-client.ts';

export interface ImageConfig {
  readonly chainId: string;
  readonly env: string[];
  readonly workingDir: string | undefined;
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const GO_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le' };

interface Descriptor {
  mediaType?: string;
  digest: string;
  platform?: { os?: string; architecture?: string };
}

/** The snapshot chain id of a stack of layer diff ids (OCI image spec: ChainID). */
export function chainId(diffIds: readonly string[]): string {
  let chain = diffIds[0] ?? '';
  for (const id of diffIds.slice(1)) chain = `sha256:${createHash('sha256').update(`${chain} ${id}`).digest('hex')}`;
  return chain;
}

async function readJson<T>(ctrd: ContainerdClient, ns: string, digest: string): Promise<T> {
  return JSON.parse((await ctrd.readContent(ns, digest)).toString('utf8')) as T;
}

export async function resolveImage(ctrd: ContainerdClient, ns: string, ref: string, forContainer: string): Promise<ImageConfig> {
  const what = `container ${forContainer}: image ${ref}`;
  let target: { media_type: string; digest: string } | null | undefined;
  try {
    target = (await ctrd.call('images', 'Get', ns, { name: ref })).image?.target;
  } catch (err) {
    if (isNotFound(err)) throw new TenantError('missing-image', `${what}: not in the content store of namespace ${ns}`);
    throw err;
  }
  if (target === null || target === undefined) throw new TenantError('missing-image', `${what}: containerd has no target for it`);
  let manifest = await readJson<{ mediaType?: string; manifests?: Descriptor[]; config?: Descriptor }>(ctrd, ns, target.digest);
  if (INDEX_TYPES.has(target.media_type) || manifest.manifests !== undefined) {
    const arch = GO_ARCH[process.arch] ?? process.arch;
    const pick = manifest.manifests?.find((m) => (m.platform?.os ?? 'linux') === 'linux' && (m.platform?.architecture ?? arch) === arch);
    if (pick === undefined) throw new TenantError('missing-image', `${what}: no linux/${arch} manifest in its index`);
    manifest = await readJson(ctrd, ns, pick.digest);
  }
  if (manifest.config === undefined) throw new TenantError('missing-image', `${what}: its manifest has no config`);
  const config = await readJson<{ rootfs?: { diff_ids?: string[] }; config?: { Env?: string[]; WorkingDir?: string } }>(ctrd, ns, manifest.config.digest);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length === 0) throw new TenantError('missing-image', `${what}: its config lists no layers`);
  const wd = config.config?.WorkingDir;
  return { chainId: chainId(diffIds), env: config.config?.Env ?? [], workingDir: wd !== undefined && wd !== '' ? wd : undefined };
}

/** A writable snapshot on top of the image's unpacked layers: the container's rootfs mounts. */
export async function prepareSnapshot(ctrd: ContainerdClient, ns: string, snapshotter: string, key: string, ref: string, parent: string, lease: string): Promise<void> {
  try {
    await ctrd.call('snapshots', 'Prepare', ns, { snapshotter, key, parent, labels: {} }, 30_000, lease);
  } catch (err) {
    if (isNotFound(err)) throw new TenantError('missing-image', `image ${ref}: not unpacked for snapshotter ${snapshotter} (snapshot ${parent} missing)`);
    throw err;
  }
}

/**
 * A short lease for a Run: a prepared snapshot no container references yet would otherwise be
 * garbage-collected under a busy containerd (seen with 100 Runs at once). It expires on its own
 * should the service die before deleting it.
 */
export async function createLease(ctrd: ContainerdClient, ns: string, id: string): Promise<string> {
  const expire = new Date(Date.now() + 10 * 60_000).toISOString();
  const r = await ctrd.call('leases', 'Create', ns, { id, labels: { 'containerd.io/gc.expire': expire } });
  if (r.lease === null) throw new Error(`containerd leases.Create: no lease in the answer for ${id}`);
  return r.lease.id;
}
