// The lxcfs-nested transform: the seccomp notification on mount(2) that lets sysrunc's mount
// listener give containers inside a system container their own lxcfs figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec.ts';
import type { LxcfsFact, Plan } from '../../src/spec-transform/types.ts';
import { DEFAULT_SETTINGS } from '../../src/spec-transform/settings.ts';
import { resolveSettings } from '../../src/spec-transform/setting-sources.ts';
import { lxcfsNested, mountListenerFiles, mountListenerPaths } from '../../src/spec-transform/lxcfs-nested.ts';
import { systemSecurity } from '../../src/spec-transform/system-security.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { LXCFS_CONTAINER_FILES, lxcfsFilePair, lxcfsLayout } from '../../src/manager/lxcfs/layout.ts';
import { assertValidConfig } from '../helpers/schema.ts';

const layout = lxcfsLayout('/run/sysrunc');
const FACT: LxcfsFact = {
  files: LXCFS_CONTAINER_FILES.map((destination) => ({ destination, source: lxcfsFilePair(layout, destination).view })),
  onlineCpus: [0, 1],
  mountListener: '/opt/sysrunc/dist/sysrunc-mount-listener',
};
const ID = 'f'.repeat(64);
const RUN_DIR = `/run/sysrunc/containers/${ID}`;

function spec(extra: Partial<Spec> = {}): Spec {
  return {
    ociVersion: '1.0.2-dev',
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/', env: ['PATH=/bin'] },
    root: { path: '/var/lib/docker/overlay2/abc/merged' },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
    ...extra,
  };
}

/** Docker's default profile, cut down: errno by default, a few allowed syscalls, mount among them. */
function dockerLike(): Spec {
  const base = spec();
  return {
    ...base,
    linux: {
      ...base.linux,
      seccomp: {
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 1,
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          { names: ['mount'], action: 'SCMP_ACT_ALLOW' },
        ],
      },
    },
  };
}

function plan(overrides: Partial<Plan> = {}): Plan {
  return {
    containerId: ID,
    bundleDir: '/run/bundle/c1',
    runDir: RUN_DIR,
    userns: { uidMappings: [{ containerID: 0, hostID: 268435456, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 268435456, size: 65536 }], fromCaller: false },
    rootfs: { requested: '/var/lib/docker/overlay2/abc/merged', resolved: '/var/lib/docker/overlay2/abc/merged', kind: 'dir', overlay: undefined },
    bindSources: new Map(),
    settings: DEFAULT_SETTINGS,
    hostCapabilities: ['CAP_SYS_ADMIN'],
    systemdInit: false,
    hookBinary: '/opt/sysrunc/bin/sysrunc-delegate-cgroups',
    hostNamespaces: new Set(['user', 'cgroup', 'time']),
    volumeMounts: [],
    cgroups: { hierarchies: [], systemdDriver: false },
    kernelFsDirs: [],
    lockedBindFlags: new Map(),
    ownership: { mode: 'idmap', bindSources: new Map() },
    lxcfs: FACT,
    ...overrides,
  };
}

const seccompOf = (s: Spec) => s.linux?.seccomp;

test('a system container without a seccomp profile gets one that allows everything but sends mount to the listener', () => {
  const { spec: out, actions } = lxcfsNested.apply(spec(), plan());
  assert.deepEqual(actions, []);
  assert.deepEqual(seccompOf(out), {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: mountListenerPaths(RUN_DIR).socket,
    syscalls: [{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }],
  });
});

test("the caller's profile is kept, and mount's allow rule gives way to the notification", () => {
  const secured = systemSecurity.apply(dockerLike(), plan()).spec;
  const out = seccompOf(lxcfsNested.apply(secured, plan()).spec);
  assert.equal(out?.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(out?.defaultErrnoRet, 1);
  assert.deepEqual(out?.architectures, ['SCMP_ARCH_X86_64']);
  const rulesFor = (name: string) => (out?.syscalls ?? []).filter((r) => r.names.includes(name)).map((r) => r.action);
  assert.deepEqual(rulesFor('mount'), ['SCMP_ACT_NOTIFY']);
  assert.deepEqual(rulesFor('read'), ['SCMP_ACT_ALLOW']);
  assert.deepEqual(rulesFor('umount2'), ['SCMP_ACT_ALLOW']);
  assert.ok((out?.syscalls ?? []).every((r) => r.names.length > 0));
});

test('the listener socket path fits a unix socket address (108 bytes) for a 64-character id, and differs per container', () => {
  const socket = mountListenerPaths(RUN_DIR).socket;
  assert.ok(Buffer.byteLength(socket) < 108, socket);
  assert.ok(socket.startsWith('/run/sysrunc/listeners/'), socket);
  assert.notEqual(mountListenerPaths(`/run/sysrunc/containers/${'e'.repeat(64)}`).socket, socket);
});

test('the listener is given each lxcfs file under /proc as <host file>=<procfs name>, nothing under /sys', () => {
  assert.deepEqual(
    mountListenerFiles(FACT.files),
    ['meminfo', 'cpuinfo', 'stat', 'uptime', 'loadavg', 'diskstats', 'swaps'].map((name) => `${layout.view}/proc/${name}=${name}`),
  );
});

test('io.sysrunc.lxcfs-nested=false leaves the seccomp profile alone', () => {
  const settings = resolveSettings(spec({ annotations: { 'io.sysrunc.lxcfs-nested': 'false' } }), {}).settings;
  assert.equal(settings.lxcfsNested, false);
  assert.equal(seccompOf(lxcfsNested.apply(spec(), plan({ settings })).spec), undefined);
});

test('SYSRUNC_LXCFS_NESTED=0 in the environment turns it off too (it only gives inner containers less)', () => {
  const settings = resolveSettings(spec({ process: { cwd: '/', args: ['sh'], env: ['SYSRUNC_LXCFS_NESTED=0'] } }), {}).settings;
  assert.equal(settings.lxcfsNested, false);
});

test('a malformed io.sysrunc.lxcfs-nested is an error naming it', () => {
  assert.throws(() => resolveSettings(spec({ annotations: { 'io.sysrunc.lxcfs-nested': 'yes' } }), {}), /annotation io\.sysrunc\.lxcfs-nested: "yes" is not true or false/);
});

test('lxcfs off, no running lxcfs, no listener binary, or not a system container: no notification', () => {
  const untouched = (p: Plan) => assert.equal(seccompOf(lxcfsNested.apply(spec(), p).spec), undefined);
  untouched(plan({ settings: { ...DEFAULT_SETTINGS, lxcfs: false } }));
  untouched(plan({ lxcfs: undefined }));
  untouched(plan({ lxcfs: { files: FACT.files, onlineCpus: FACT.onlineCpus } }));
  untouched(plan({ settings: { ...DEFAULT_SETTINGS, systemContainer: false } }));
});

test('a config that names its own seccomp listener keeps it (the kernel allows one listener per filter chain)', () => {
  const own = dockerLike();
  const withListener: Spec = { ...own, linux: { ...own.linux, seccomp: { ...own.linux!.seccomp!, listenerPath: '/run/mine.sock' } } };
  assert.deepEqual(lxcfsNested.apply(withListener, plan()).spec, withListener);
});

test('a profile that denies mount (or filters it by argument) keeps that rule and gets no notification', () => {
  const base = spec();
  for (const rule of [
    { names: ['mount'], action: 'SCMP_ACT_ERRNO' as const },
    { names: ['mount'], action: 'SCMP_ACT_ALLOW' as const, args: [{ index: 3, value: 4096, op: 'SCMP_CMP_MASKED_EQ' as const }] },
  ]) {
    const denying: Spec = { ...base, linux: { ...base.linux, seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [rule] } } };
    assert.deepEqual(lxcfsNested.apply(denying, plan()).spec, denying);
  }
});

test('the whole pipeline, with and without a caller profile, gives a schema-valid config that notifies on mount', () => {
  for (const input of [spec(), dockerLike()]) {
    const { spec: out } = runPipeline(input, plan());
    assertValidConfig(out);
    assert.equal(seccompOf(out)?.listenerPath, mountListenerPaths(RUN_DIR).socket);
    assert.deepEqual((seccompOf(out)?.syscalls ?? []).filter((r) => r.names.includes('mount')).map((r) => r.action), ['SCMP_ACT_NOTIFY']);
  }
});
