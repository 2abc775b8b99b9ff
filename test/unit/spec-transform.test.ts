import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec.ts';
import type { Plan } from '../../src/spec-transform/types.ts';
import type { HostAction } from '../../src/manager-api/v1.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { userNamespace } from '../../src/spec-transform/user-namespace.ts';
import { rootfsOwnership } from '../../src/spec-transform/rootfs-ownership.ts';
import { bindMountOwnership, isEngineFile, wantsOwnership } from '../../src/spec-transform/bind-mount-ownership.ts';
import { assertValidConfig } from '../helpers/schema.ts';
import { dockerConfig, PROC_MOUNT } from '../helpers/docker-config.ts';
import { bindFacts, DOCKER_OVERLAY, DOCKER_OVERLAY_ROOTFS, planWith } from '../helpers/plan.ts';
import { DEFAULT_SETTINGS } from '../../src/spec-transform/settings.ts';
import { systemNamespaces } from '../../src/spec-transform/system-namespaces.ts';
import { systemCapabilities } from '../../src/spec-transform/system-capabilities.ts';
import { DOCKER_CONTAINERD_DEFAULT } from '../../src/spec-transform/engine-capabilities.ts';
import { systemMounts } from '../../src/spec-transform/system-mounts.ts';
import { systemSecurity } from '../../src/spec-transform/system-security.ts';
import { systemdInit } from '../../src/spec-transform/systemd.ts';
import { cgroupDelegation } from '../../src/spec-transform/cgroup-delegation.ts';
import { bundlePaths } from '../../src/spec-transform/bundle-paths.ts';
import { storeVolumes } from '../../src/spec-transform/store-volumes.ts';

/** Docker's config with /dev, its /etc/hosts and a user's bind of /srv/data. */
const dockerLikeSpec = (): Spec =>
  dockerConfig(
    [
      PROC_MOUNT,
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/etc/hosts', type: 'bind', source: '/var/lib/docker/containers/c1/hosts', options: ['rbind', 'rprivate'] },
      { destination: '/data', type: 'bind', source: '/srv/data', options: ['bind'] },
    ],
    { hostname: 'c1' },
  );

/** The bind sources of dockerLikeSpec's /etc/hosts and /data, idmapped. */
const DOCKER_BINDS = bindFacts({ 2: { source: '/var/lib/docker/containers/c1/hosts', kind: 'file' }, 3: { source: '/srv/data', kind: 'dir' } });
const plan = (overrides: Partial<Plan> = {}): Plan => planWith({ ...DOCKER_BINDS, ...overrides });

test('user-namespace adds a user namespace mapping container root to the allocated range', () => {
  const { spec, actions } = userNamespace.apply(dockerLikeSpec(), plan());
  assert.deepEqual(spec.linux?.namespaces?.filter((n) => n.type === 'user'), [{ type: 'user' }]);
  assert.deepEqual(spec.linux?.uidMappings, [{ containerID: 0, hostID: 268435456, size: 65536 }]);
  assert.deepEqual(spec.linux?.gidMappings, [{ containerID: 0, hostID: 268435456, size: 65536 }]);
  assert.deepEqual(actions, []);
});

test('user-namespace cuts Docker\'s ping_group_range to the mapped gids', () => {
  const input = dockerLikeSpec();
  input.linux = { ...input.linux, sysctl: { 'net.ipv4.ping_group_range': '0 2147483647' } };
  const { spec } = userNamespace.apply(input, plan());
  assert.equal(spec.linux?.sysctl?.['net.ipv4.ping_group_range'], '0 65535');
});

/** A config as podman gives it on its own network: the namespace netavark made, joined by path. */
function podmanNetworkSpec(pingRange: string): Spec {
  const input = dockerLikeSpec();
  const namespaces = (input.linux?.namespaces ?? []).map((n) => (n.type === 'network' ? { type: 'network' as const, path: '/run/netns/netns-1' } : n));
  input.linux = { ...input.linux, namespaces, sysctl: { 'net.ipv4.ping_group_range': pingRange, 'net.ipv4.ip_forward': '1' } };
  return input;
}

test("user-namespace drops podman's ping_group_range in a network namespace the host owns when it names none of the container's gids", () => {
  const { spec } = userNamespace.apply(podmanNetworkSpec('0 0'), plan());
  assert.deepEqual(spec.linux?.sysctl, { 'net.ipv4.ip_forward': '1' });
});

test("user-namespace keeps, unchanged, a ping_group_range in a network namespace the host owns that names the container's gids", () => {
  const { spec } = userNamespace.apply(podmanNetworkSpec('0 2147483647'), plan());
  assert.equal(spec.linux?.sysctl?.['net.ipv4.ping_group_range'], '0 2147483647');
});

test('user-namespace keeps the ping_group_range of a network namespace joined with its owner user namespace, cut to the mapped gids', () => {
  const joined = plan({ userns: { ...plan().userns, join: { path: '/proc/42/ns/user', types: ['network'] } } });
  const { spec } = userNamespace.apply(podmanNetworkSpec('0 2147483647'), joined);
  assert.equal(spec.linux?.sysctl?.['net.ipv4.ping_group_range'], '0 65535');
});

test('user-namespace keeps a user namespace the caller configured', () => {
  const callerSpec = dockerLikeSpec();
  callerSpec.linux = { ...callerSpec.linux, namespaces: [{ type: 'user' }], uidMappings: [{ containerID: 0, hostID: 5000, size: 10 }] };
  const { spec } = userNamespace.apply(callerSpec, plan({ userns: { uidMappings: [], gidMappings: [], fromCaller: true } }));
  assert.deepEqual(spec.linux?.uidMappings, [{ containerID: 0, hostID: 5000, size: 10 }]);
});

test('in idmap mode, rootfs-ownership points root.path into the run dir and asks for an idmapped mount of the original', () => {
  const { spec, actions } = rootfsOwnership.apply(dockerLikeSpec(), plan());
  assert.equal(spec.root?.path, '/run/sysrunc/c1/rootfs');
  assert.deepEqual(actions, [{ kind: 'idmapped-mount', source: '/var/lib/docker/overlay2/abc/merged', target: '/run/sysrunc/c1/rootfs', recursive: true }]);
});

test('an overlay rootfs becomes a new overlay over idmapped views of its layers, in place of the engine\'s', () => {
  const { spec, actions } = rootfsOwnership.apply(dockerLikeSpec(), plan({ rootfs: DOCKER_OVERLAY_ROOTFS }));
  assert.equal(spec.root?.path, '/run/sysrunc/c1/rootfs');
  assert.deepEqual(actions, [
    { kind: 'idmapped-mount', source: '/var/lib/docker/overlay2/abc-init/diff', target: '/run/sysrunc/c1/layers/0', recursive: false },
    { kind: 'idmapped-mount', source: '/var/lib/docker/overlay2/img/diff', target: '/run/sysrunc/c1/layers/1', recursive: false },
    { kind: 'idmapped-mount', source: '/var/lib/docker/overlay2/abc', target: '/run/sysrunc/c1/upper', recursive: false, mounterWritable: true },
    {
      kind: 'overlay-mount',
      target: '/run/sysrunc/c1/rootfs',
      lowerdirs: ['/run/sysrunc/c1/layers/0', '/run/sysrunc/c1/layers/1'],
      upperdir: '/run/sysrunc/c1/upper/diff',
      workdir: '/run/sysrunc/c1/upper/work',
      options: { index: 'off' },
      replaces: { mountpoint: '/var/lib/docker/overlay2/abc/merged', ...DOCKER_OVERLAY },
    },
  ]);
});

test('in idmap mode, bind-mount-ownership replaces host bind sources and leaves kernel mounts alone', () => {
  const { spec, actions } = bindMountOwnership.apply(dockerLikeSpec(), plan());
  assert.equal(spec.mounts?.[0]?.source, 'proc');
  assert.equal(spec.mounts?.[1]?.source, 'tmpfs');
  assert.equal(spec.mounts?.[2]?.source, '/run/sysrunc/c1/mounts/2');
  assert.equal(spec.mounts?.[3]?.source, '/run/sysrunc/c1/mounts/3');
  assert.deepEqual(actions.map((a: HostAction) => a.kind === 'idmapped-mount' && [a.source, a.recursive]), [['/var/lib/docker/containers/c1/hosts', true], ['/srv/data', false]]);
});

test('bind sources under /proc, /sys and /dev never get their ownership changed', () => {
  const bind = { destination: '/x', type: 'bind', source: '/dev/fuse', options: ['bind'] };
  assert.equal(wantsOwnership(bind, '/dev/fuse'), false);
  assert.equal(wantsOwnership(bind, '/sys/fs/cgroup'), false);
  assert.equal(wantsOwnership(bind, '/proc'), false);
  assert.equal(wantsOwnership(bind, '/devices'), true);
});

test('in clone mode, root.path becomes a new overlay over a clone of the layers, upper dir kept, in place of the engine\'s', () => {
  const { spec, actions } = rootfsOwnership.apply(dockerLikeSpec(), plan({ ownership: { mode: 'clone', bindSources: new Map() }, rootfs: DOCKER_OVERLAY_ROOTFS }));
  assert.equal(spec.root?.path, '/run/sysrunc/c1/rootfs');
  assert.deepEqual(actions, [{
    kind: 'rootfs-clone',
    target: '/run/sysrunc/c1/rootfs',
    lowerdirs: DOCKER_OVERLAY.lowerdirs,
    upperdir: DOCKER_OVERLAY.upperdir,
    workdir: DOCKER_OVERLAY.workdir,
    options: { index: 'off' },
    replaces: { mountpoint: '/var/lib/docker/overlay2/abc/merged', ...DOCKER_OVERLAY },
  }]);
});

test('in clone mode, the store volumes\' paths keep their ownership in the upper dir', () => {
  const volume = { destination: '/var/lib/docker', source: '/var/lib/sysrunc/volumes/c1/var-lib-docker', type: 'bind' as const, options: ['rbind', 'rprivate'] };
  const { actions } = rootfsOwnership.apply(dockerLikeSpec(), plan({ ownership: { mode: 'clone', bindSources: new Map() }, volumeMounts: [volume], rootfs: DOCKER_OVERLAY_ROOTFS }));
  assert.deepEqual(actions.map((a: HostAction) => a.kind === 'rootfs-clone' && a.keepOwnership), [['/var/lib/docker']]);
});

test('clone mode on a rootfs that is not an overlay is an error naming root.path', () => {
  assert.throws(() => rootfsOwnership.apply(dockerLikeSpec(), plan({ ownership: { mode: 'clone', bindSources: new Map() } })), /root.path \/var\/lib\/docker\/overlay2\/abc\/merged: ownership mode clone needs an overlay rootfs/);
});

test('in chown mode, the rootfs is shifted in place and bound into the run dir', () => {
  const { spec, actions } = rootfsOwnership.apply(dockerLikeSpec(), plan({ ownership: { mode: 'chown', bindSources: new Map() } }));
  assert.equal(spec.root?.path, '/run/sysrunc/c1/rootfs');
  assert.deepEqual(actions, [
    { kind: 'chown-tree', path: '/var/lib/docker/overlay2/abc/merged' },
    { kind: 'bind-mount', source: '/var/lib/docker/overlay2/abc/merged', target: '/run/sysrunc/c1/rootfs', recursive: true },
  ]);
});

test('a bind source the manager chose to chown keeps its source and gets one chown-tree action', () => {
  const input = dockerLikeSpec();
  input.mounts = [...(input.mounts ?? []), { destination: '/data2', type: 'bind', source: '/srv/data', options: ['bind'] }];
  const binds = bindFacts({ 3: { source: '/srv/data', kind: 'dir' }, 4: { source: '/srv/data', kind: 'dir' } }, 'chown', 'clone');
  const { spec, actions } = bindMountOwnership.apply(input, plan(binds));
  assert.equal(spec.mounts?.[3]?.source, '/srv/data');
  assert.equal(spec.mounts?.[4]?.source, '/srv/data');
  assert.deepEqual(actions, [{ kind: 'chown-tree', path: '/srv/data' }]);
});

test('a bind source left in the container\'s own range is bound on the host\'s side first, as it is', () => {
  const { spec, actions } = bindMountOwnership.apply(dockerLikeSpec(), plan({ ownership: { mode: 'idmap', bindSources: new Map() } }));
  assert.equal(spec.mounts?.[3]?.source, '/run/sysrunc/c1/mounts/3');
  assert.deepEqual(actions[1], { kind: 'bind-mount', source: '/srv/data', target: '/run/sysrunc/c1/mounts/3', recursive: false, readOnly: false });
});

test('a read-only bind is made read-only on the host\'s side, idmapped or not, so container root cannot remount it read-write', () => {
  const input = dockerLikeSpec();
  input.mounts = (input.mounts ?? []).map((m) => (m.destination === '/data' ? { ...m, options: ['bind', 'ro'] } : m));
  const plain = bindMountOwnership.apply(input, plan({ ownership: { mode: 'idmap', bindSources: new Map() } })).actions;
  assert.deepEqual(plain.find((a) => a.kind === 'bind-mount' && a.source === '/srv/data'), { kind: 'bind-mount', source: '/srv/data', target: '/run/sysrunc/c1/mounts/3', recursive: false, readOnly: true });
  const idmapped = bindMountOwnership.apply(input, plan()).actions;
  assert.deepEqual(idmapped.find((a) => a.kind === 'idmapped-mount' && a.source === '/srv/data'), { kind: 'idmapped-mount', source: '/srv/data', target: '/run/sysrunc/c1/mounts/3', recursive: false, readOnly: true });
});

test('the engine\'s own files for the container are told apart from user binds by the container\'s (or its pod\'s) id', () => {
  const id = 'f'.repeat(64);
  const sandbox = 'a'.repeat(64);
  const spec: Spec = { ...dockerLikeSpec(), annotations: { 'io.kubernetes.cri.sandbox-id': sandbox } };
  assert.equal(isEngineFile(`/var/lib/docker/containers/${id}/hosts`, id, spec), true);
  assert.equal(isEngineFile(`/var/lib/docker/containers/${id}/mounts/shm`, id, spec), true);
  assert.equal(isEngineFile(`/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/${sandbox}/resolv.conf`, id, spec), true);
  assert.equal(isEngineFile('/srv/data', id, spec), false);
  assert.equal(isEngineFile(`/srv/${id}`, id, spec), false, 'a dir named after the container is not its engine file; only what is inside one');
  assert.equal(isEngineFile('/srv/c1/x', 'c1', dockerLikeSpec()), false, 'short ids are not trusted as engine dirs');
});

test('a mount that already asks for idmap is left to runc', () => {
  assert.equal(wantsOwnership({ destination: '/x', type: 'bind', source: '/s', options: ['bind', 'idmap'] }, '/s'), false);
});

test('the pipeline does not modify its input spec', () => {
  const input = dockerLikeSpec();
  const before = structuredClone(input);
  runPipeline(input, plan());
  assert.deepEqual(input, before);
});

test('the pipeline output is a valid OCI config', () => {
  assertValidConfig(runPipeline(dockerLikeSpec(), plan()).spec);
});

test('the pipeline asks for the rootfs mount before the bind mounts', () => {
  const { actions } = runPipeline(dockerLikeSpec(), plan());
  assert.equal(actions[0]?.kind === 'idmapped-mount' ? actions[0].target : undefined, '/run/sysrunc/c1/rootfs');
  assert.equal(actions.filter((a) => a.kind === 'idmapped-mount').length, 3);
});

test('system-namespaces refuses the host network namespace, naming the opt-out', () => {
  assert.throws(
    () => systemNamespaces.apply(dockerLikeSpec(), plan({ hostNamespaces: new Set(['network']) })),
    /the network namespace is the host's \(--network host\).*io\.sysrunc\.syscont=false or the runtime flag --sysrunc-syscont=false/,
  );
});

test('system-namespaces adds a cgroup namespace', () => {
  const { spec } = systemNamespaces.apply(dockerLikeSpec(), plan());
  assert.ok(spec.linux?.namespaces?.some((n) => n.type === 'cgroup'));
});

test('a plain user-namespace container keeps the host network and binds /sys instead of mounting sysfs', () => {
  const input = dockerLikeSpec();
  input.mounts = [...(input.mounts ?? []), { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro'] }];
  const { spec } = userNamespace.apply(input, plan({ hostNamespaces: new Set(['network']) }));
  assert.deepEqual(spec.mounts?.find((m) => m.destination === '/sys'), { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
});

test('system-capabilities gives root every capability the host allows', () => {
  const { spec } = systemCapabilities.apply(dockerLikeSpec(), plan());
  assert.deepEqual(spec.process?.capabilities?.effective, ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN']);
  assert.deepEqual(spec.process?.capabilities?.bounding, ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN']);
});

test('system-capabilities gives a non-root process the capabilities in its bounding set only', () => {
  const input = dockerLikeSpec();
  input.process = { ...input.process, cwd: '/', user: { uid: 1000, gid: 1000 }, capabilities: { bounding: [...DOCKER_CONTAINERD_DEFAULT], effective: [] } };
  const { spec } = systemCapabilities.apply(input, plan());
  assert.deepEqual(spec.process?.capabilities, { effective: [], bounding: ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] });
});

test('system-capabilities keeps the caller\'s capabilities when asked to', () => {
  const input = dockerLikeSpec();
  input.process = { ...input.process, cwd: '/', capabilities: { effective: ['CAP_KILL'] } };
  const { spec } = systemCapabilities.apply(input, plan({ settings: { ...DEFAULT_SETTINGS, capabilities: 'caller' } }));
  assert.deepEqual(spec.process?.capabilities, { effective: ['CAP_KILL'] });
});

test('system-mounts makes the cgroup mount writable and binds /dev/kmsg to /dev/null', () => {
  const input = dockerLikeSpec();
  input.mounts = [...(input.mounts ?? []), { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid'] }];
  const { spec } = systemMounts.apply(input, plan());
  assert.deepEqual(spec.mounts?.find((m) => m.destination === '/sys/fs/cgroup')?.options, ['nosuid', 'rw']);
  assert.deepEqual(spec.mounts?.find((m) => m.destination === '/dev/kmsg'), { destination: '/dev/kmsg', type: 'bind', source: '/dev/null', options: ['rbind', 'rw'] });
});

test('system-mounts keeps host-global sysctls read-only but lets /proc/sys/net be written', () => {
  const input = dockerLikeSpec();
  input.linux = { ...input.linux, readonlyPaths: ['/proc/bus', '/proc/sys', '/proc/sysrq-trigger'] };
  const { spec } = systemMounts.apply(input, plan());
  assert.ok(spec.linux?.readonlyPaths?.includes('/proc/sys/kernel'));
  assert.ok(!spec.linux?.readonlyPaths?.includes('/proc/sys'));
  assert.ok(!spec.linux?.readonlyPaths?.some((p) => p.startsWith('/proc/sys/net')));
  assert.ok(spec.linux?.readonlyPaths?.includes('/proc/sysrq-trigger'));
});

test('system-mounts gives a read-only container writable /run and /tmp', () => {
  const input = { ...dockerLikeSpec(), root: { path: '/r', readonly: true } };
  const { spec } = systemMounts.apply(input, plan());
  assert.equal(spec.mounts?.find((m) => m.destination === '/run')?.type, 'tmpfs');
  assert.equal(spec.mounts?.find((m) => m.destination === '/tmp')?.type, 'tmpfs');
});

test('system-security allows mount and namespace syscalls on top of the caller\'s seccomp profile', () => {
  const input = dockerLikeSpec();
  input.linux = { ...input.linux, seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] } };
  const { spec } = systemSecurity.apply(input, plan());
  const allowed = spec.linux?.seccomp?.syscalls?.flatMap((s) => (s.action === 'SCMP_ACT_ALLOW' ? s.names : []));
  for (const name of ['read', 'mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'keyctl', 'sethostname']) assert.ok(allowed?.includes(name), name);
});

test('system-security drops docker-default AppArmor, which forbids mount', () => {
  const input = dockerLikeSpec();
  input.process = { ...input.process, cwd: '/', apparmorProfile: 'docker-default' };
  assert.equal(systemSecurity.apply(input, plan()).spec.process?.apparmorProfile, undefined);
});

test('systemd gets tmpfs /run and /run/lock and container= in its environment', () => {
  const { spec } = systemdInit.apply(dockerLikeSpec(), plan({ systemdInit: true }));
  assert.equal(spec.mounts?.find((m) => m.destination === '/run')?.type, 'tmpfs');
  assert.equal(spec.mounts?.find((m) => m.destination === '/run/lock')?.type, 'tmpfs');
  assert.ok(spec.process?.env?.includes('container=sysrunc'));
});

// The caller (which becomes runc) as on a cgroup v1 hybrid host: memory nested, the rest at the root.
const HYBRID = [
  { controllers: 'cpu,cpuacct', path: '/', mountpoint: '/sys/fs/cgroup/cpu,cpuacct', mountRoot: '/' },
  { controllers: 'memory', path: '/user.slice', mountpoint: '/sys/fs/cgroup/memory', mountRoot: '/' },
  { controllers: 'name=systemd', path: '/', mountpoint: '/sys/fs/cgroup/systemd', mountRoot: '/' },
  { controllers: '', path: '/', mountpoint: '/sys/fs/cgroup/unified', mountRoot: '/' },
];

test('cgroup delegation with the systemd driver adds a createRuntime hook naming the container root', () => {
  const { spec, actions } = cgroupDelegation.apply(dockerLikeSpec(), plan({ cgroups: { hierarchies: HYBRID, systemdDriver: true } }));
  assert.deepEqual(spec.hooks?.createRuntime, [{ path: '/opt/sysrunc/bin/sysrunc-delegate-cgroups', args: ['sysrunc-delegate-cgroups', '268435456', '268435456'] }]);
  assert.deepEqual(actions, []);
});

test('cgroup delegation of an absolute cgroupsPath: the same path below every hierarchy, and no hook', () => {
  const input = dockerLikeSpec();
  input.linux = { ...input.linux, cgroupsPath: '/docker/c1' };
  const { spec, actions } = cgroupDelegation.apply(input, plan({ cgroups: { hierarchies: HYBRID, systemdDriver: false } }));
  assert.equal(spec.hooks, undefined);
  assert.deepEqual(actions, [
    { kind: 'cgroup-delegate', dirs: ['/sys/fs/cgroup/cpu,cpuacct/docker/c1', '/sys/fs/cgroup/memory/docker/c1', '/sys/fs/cgroup/systemd/docker/c1', '/sys/fs/cgroup/unified/docker/c1'] },
  ]);
});

test('cgroup delegation without a cgroupsPath: runc\'s default, the container id below the caller\'s own cgroups', () => {
  const { actions } = cgroupDelegation.apply(dockerLikeSpec(), plan({ cgroups: { hierarchies: HYBRID, systemdDriver: false } }));
  assert.deepEqual(actions, [
    { kind: 'cgroup-delegate', dirs: ['/sys/fs/cgroup/cpu,cpuacct/c1', '/sys/fs/cgroup/memory/user.slice/c1', '/sys/fs/cgroup/systemd/c1', '/sys/fs/cgroup/unified/c1'] },
  ]);
});

test('cgroup delegation of a systemd-style cgroupsPath (slice:prefix:name) falls back to the hook', () => {
  const input = dockerLikeSpec();
  input.linux = { ...input.linux, cgroupsPath: 'system.slice:docker:c1' };
  const { spec, actions } = cgroupDelegation.apply(input, plan({ cgroups: { hierarchies: HYBRID, systemdDriver: false } }));
  assert.equal(spec.hooks?.createRuntime?.length, 1);
  assert.deepEqual(actions, []);
});

test('cgroup delegation never names a hierarchy\'s root or a path outside its mount', () => {
  for (const cgroupsPath of ['/', '/..', '../../..']) {
    const input = dockerLikeSpec();
    input.linux = { ...input.linux, cgroupsPath };
    const { actions } = cgroupDelegation.apply(input, plan({ cgroups: { hierarchies: HYBRID, systemdDriver: false } }));
    assert.deepEqual(actions, [], cgroupsPath);
  }
});

test('system-mounts puts an empty read-only tmpfs where a user namespace cannot mount a kernel filesystem', () => {
  const { spec } = systemMounts.apply(dockerLikeSpec(), plan({ kernelFsDirs: ['/sys/kernel/debug', '/dev/hugepages'] }));
  for (const dir of ['/sys/kernel/debug', '/dev/hugepages']) {
    const m = spec.mounts?.find((x) => x.destination === dir);
    assert.equal(m?.type, 'tmpfs', dir);
    assert.ok(m?.options?.includes('ro'), dir);
  }
  const order = (spec.mounts ?? []).map((m) => m.destination);
  assert.ok(order.indexOf('/sys/kernel/debug') > order.indexOf('/sys'), 'mounted before /sys');
});

test('a bind mount keeps the nosuid/nodev/noexec flags of its source\'s host mount, which a user namespace cannot clear', () => {
  const { spec } = bundlePaths.apply(dockerLikeSpec(), plan({ lockedBindFlags: new Map([[3, ['nosuid', 'nodev']]]) }));
  assert.deepEqual(spec.mounts?.[3]?.options, ['bind', 'nosuid', 'nodev']);
  assert.deepEqual(spec.mounts?.[2]?.options, ['rbind', 'rprivate']);
});

test('none of the system-container transforms act when the container opts out', () => {
  const optOut = plan({ settings: { ...DEFAULT_SETTINGS, systemContainer: false }, hostNamespaces: new Set(['network']) });
  for (const t of [systemNamespaces, systemCapabilities, systemMounts, systemSecurity, cgroupDelegation]) {
    assert.deepEqual(t.apply(dockerLikeSpec(), optOut).spec, dockerLikeSpec(), t.name);
  }
});

test('store-volumes appends the manager\'s volume mounts after the caller\'s', () => {
  const volume = { destination: '/var/lib/docker', source: '/var/lib/sysrunc/volumes/c1/docker', type: 'bind' as const, options: ['rbind', 'rprivate'] };
  const { spec, actions } = storeVolumes.apply(dockerLikeSpec(), plan({ volumeMounts: [volume] }));
  assert.deepEqual(spec.mounts?.at(-1), volume);
  assert.deepEqual(actions, []);
});

test('store volumes are not given an idmapped view by the pipeline', () => {
  const volume = { destination: '/var/lib/docker', source: '/var/lib/sysrunc/volumes/c1/docker', type: 'bind' as const, options: ['rbind'] };
  const { spec } = runPipeline(dockerLikeSpec(), plan({ volumeMounts: [volume] }));
  assert.equal(spec.mounts?.find((m) => m.destination === '/var/lib/docker')?.source, volume.source);
});
