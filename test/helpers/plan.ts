// The facts the spec transforms read (their Plan), built one way for every unit test: a Docker
// container c1 with an overlay2 rootfs, container root mapped to the manager's first subordinate
// range, idmap ownership, a host that shares user, cgroup and time namespaces and lets runc grant
// CHOWN, SYS_ADMIN and NET_ADMIN. A test overrides only the facts its behaviour is about, so what
// differs from this default is what the test says.
import type { IdMapping, OwnershipMode } from '../../src/manager-api/v1.ts';
import { DEFAULT_SETTINGS } from '../../src/spec-transform/settings.ts';
import type { OverlayFact, PathFact, Plan, RootfsFact } from '../../src/spec-transform/types.ts';

/** Container root (0..65535) on the first range the manager hands out. */
export const ROOT_MAPPING: readonly IdMapping[] = [{ containerID: 0, hostID: 268435456, size: 65536 }];
export const DOCKER_ROOTFS = '/var/lib/docker/overlay2/abc/merged';
/** The layers under DOCKER_ROOTFS, as gather-facts reads them from its mount. */
export const DOCKER_OVERLAY: OverlayFact = {
  lowerdirs: ['/var/lib/docker/overlay2/abc-init/diff', '/var/lib/docker/overlay2/img/diff'],
  upperdir: '/var/lib/docker/overlay2/abc/diff',
  workdir: '/var/lib/docker/overlay2/abc/work',
  options: { index: 'off' },
};
/** The rootfs fact of a container whose rootfs is that overlay (the default plan's has none found). */
export const DOCKER_OVERLAY_ROOTFS: RootfsFact = { requested: DOCKER_ROOTFS, resolved: DOCKER_ROOTFS, kind: 'dir', overlay: DOCKER_OVERLAY };
export const DELEGATE_HOOK = '/opt/sysrunc/bin/sysrunc-delegate-cgroups';
export const NETNS_HOOK = '/opt/sysrunc/bin/sysrunc-adopt-netns';

/** The default facts, with `overrides` in place of the ones they name. */
export function planWith(overrides: Partial<Plan> = {}): Plan {
  return {
    containerId: 'c1',
    bundleDir: '/run/bundle/c1',
    runDir: '/run/sysrunc/c1',
    userns: { uidMappings: ROOT_MAPPING, gidMappings: ROOT_MAPPING, fromCaller: false },
    rootfs: { requested: DOCKER_ROOTFS, resolved: DOCKER_ROOTFS, kind: 'dir', overlay: undefined },
    bindSources: new Map(),
    ownership: { mode: 'idmap', bindSources: new Map() },
    settings: DEFAULT_SETTINGS,
    hostCapabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN'],
    systemdInit: false,
    hookBinary: DELEGATE_HOOK,
    hostNamespaces: new Set(['user', 'cgroup', 'time']),
    volumeMounts: [],
    cgroups: { hierarchies: [], systemdDriver: false },
    kernelFsDirs: [],
    lockedBindFlags: new Map(),
    ...overrides,
  };
}

/**
 * Bind mounts of the config (by index in its mounts), each source resolved to itself, and how the
 * manager gives container root their ownership (all the same way, under the rootfs's `mode`): the
 * facts of a plan about binds.
 */
export function bindFacts(
  binds: Readonly<Record<number, { readonly source: string; readonly kind: PathFact['kind'] }>>,
  how: 'idmap' | 'chown' | 'none' = 'idmap',
  mode: OwnershipMode = 'idmap',
): Pick<Plan, 'bindSources' | 'ownership'> {
  const entries = Object.entries(binds).map(([index, b]): [number, PathFact] => [Number(index), { requested: b.source, resolved: b.source, kind: b.kind }]);
  return {
    bindSources: new Map(entries),
    ownership: { mode, bindSources: new Map(entries.map(([, fact]) => [fact.resolved, how])) },
  };
}
