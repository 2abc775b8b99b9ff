// Property-based fuzz of the whole create-time transform (settings + the pipeline) over generated
// configs and host facts: it returns a config valid against the OCI schema, or throws a
// SysruncError (a one-line error for the user); never any other exception. Every host action it
// asks for, of every kind, stays within what the facts allow. Host facts are hostile: bind sources
// that resolve elsewhere than named (symlinks to /, /etc, /proc, the run dir), caller mappings of
// any shape. A fresh seed each run (FUZZ_SEED replays one; it is printed on failure); runs are
// bounded (FUZZ_RUNS, default 300), and a run that checked no action of some kind fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import path from 'node:path';
import type { Mount, Spec } from '../../src/oci/spec.ts';
import type { HostAction } from '../../src/manager-api/v1.ts';
import type { Plan, PathFact } from '../../src/spec-transform/types.ts';
import { DOCKER_OVERLAY, DOCKER_ROOTFS, NETNS_HOOK, planWith, ROOT_MAPPING } from '../helpers/plan.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { readSettings } from '../../src/spec-transform/setting-sources.ts';
import { SysruncError } from '../../src/common/errors.ts';
import { configSchemaErrors } from '../helpers/schema.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
/** Fresh each run, so each CI run explores new cases; fast-check prints it with any failure. */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const withSeed = (offset: number) => ({ seed: SEED + offset, numRuns: RUNS });
const RUN_DIR = '/run/sysrunc/containers/fuzz';

const absPath = fc.array(fc.constantFrom('var', 'lib', 'docker', 'etc', 'hosts', 'data', 'x', '..', '.', 'run', 'sys', 'proc', 'dev', 'a b', 'ü'), { minLength: 0, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);

const mount: fc.Arbitrary<Mount> = fc.record(
  {
    destination: absPath,
    // Binds mostly: theirs are the host facts (sources, resolutions) the transforms act on.
    type: fc.oneof({ weight: 4, arbitrary: fc.constant('bind') }, { weight: 2, arbitrary: fc.constantFrom('tmpfs', 'proc', 'sysfs', 'mqueue', 'devpts', 'cgroup', 'overlay', 'none') }),
    source: fc.oneof(absPath, fc.constantFrom('tmpfs', 'proc', 'sysfs', 'shm')),
    options: fc.array(fc.constantFrom('rbind', 'bind', 'ro', 'rw', 'nosuid', 'nodev', 'noexec', 'rprivate', 'idmap', 'mode=755', 'size=64k'), { maxLength: 5 }),
  },
  { requiredKeys: ['destination'] },
);

const NS_TYPES = ['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup', 'time'] as const;
const namespace = fc.record({ type: fc.constantFrom(...NS_TYPES), path: fc.option(fc.constantFrom('/proc/1/ns/net', '/var/run/netns/cni-1', '/proc/42/ns/ipc'), { nil: undefined }) }).map((ns) =>
  ns.path === undefined ? { type: ns.type } : { type: ns.type, path: ns.path },
);

// Settings, well- and ill-formed: an unknown or malformed one must be a SysruncError. Mostly
// well-formed, so that most cases get past the settings to the transforms and their actions.
const validEnv = fc.constantFrom('SYSRUNC_USERNS_SIZE=65536', 'SYSRUNC_CAPABILITIES=caller', 'SYSRUNC_SYSTEMD=true', 'SYSRUNC_STORE_VOLUMES=false', 'SYSRUNC_OWNERSHIP=chown', 'SYSRUNC_BIND_OWNERSHIP=host-root', 'PATH=/bin');
const invalidEnv = fc.constantFrom('SYSRUNC_USERNS_SIZE=abc', 'SYSRUNC_SYSCONT=maybe', 'SYSRUNC_BOGUS=1', 'SYSRUNC_SYSCONT=false');
const settingEnv = fc.oneof({ weight: 6, arbitrary: validEnv }, { weight: 1, arbitrary: invalidEnv });
const validAnnotations = fc.dictionary(
  fc.constantFrom('io.sysrunc.capabilities', 'io.sysrunc.bind-ownership', 'io.kubernetes.cri.container-type', 'org.example'),
  fc.constantFrom('all', 'caller', 'host-root', 'container', 'sandbox', ''),
).filter((a) => ['io.sysrunc.capabilities', 'io.sysrunc.bind-ownership'].every((k) => a[k] === undefined || ['all', 'caller', 'host-root', 'container'].includes(a[k] as string)));
const anyAnnotations = fc.dictionary(
  fc.constantFrom('io.sysrunc.syscont', 'io.sysrunc.capabilities', 'io.sysrunc.bind-ownership', 'io.sysrunc.nope', 'io.kubernetes.cri.container-type', 'org.example'),
  fc.constantFrom('true', 'false', 'all', 'caller', 'host-root', 'container', 'sandbox', ''),
);
const annotations = fc.oneof({ weight: 4, arbitrary: validAnnotations }, { weight: 1, arbitrary: anyAnnotations });

const spec: fc.Arbitrary<Spec> = fc.record(
  {
    ociVersion: fc.constant('1.0.2-dev'),
    process: fc.record({
      user: fc.record({ uid: fc.nat(70000), gid: fc.nat(70000) }),
      args: fc.oneof(fc.constant('/sbin/init').map((a) => [a]), fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 3 })),
      cwd: fc.constant('/'),
      env: fc.array(settingEnv, { maxLength: 3 }),
      capabilities: fc.option(fc.record({ bounding: fc.constant(['CAP_CHOWN']), effective: fc.constant(['CAP_CHOWN']) }), { nil: undefined }),
    }),
    root: fc.record({ path: fc.constantFrom('/var/lib/docker/overlay2/abc/merged', 'rootfs'), readonly: fc.boolean() }, { requiredKeys: ['path'] }),
    hostname: fc.string({ maxLength: 10 }),
    mounts: fc.array(mount, { maxLength: 6 }),
    annotations,
    linux: fc.record({
      namespaces: fc.uniqueArray(namespace, { selector: (ns) => ns.type, maxLength: 8 }),
      sysctl: fc.option(fc.constant({ 'net.ipv4.ping_group_range': '0 2147483647' }), { nil: undefined }),
      cgroupsPath: fc.option(fc.constantFrom('/docker/abc', 'system.slice:docker:abc'), { nil: undefined }),
    }, { requiredKeys: ['namespaces'] }),
  },
  { requiredKeys: ['ociVersion', 'process', 'root'] },
);

/** Where a bind source may resolve to: itself, or through a symlink somewhere hostile. */
const HOSTILE_RESOLUTIONS = ['/', '/etc', '/proc/self/root', '/run/sysrunc/containers/fuzz', '/run/sysrunc/containers/other', '/var/lib/docker', '/a b/ü'] as const;
const bindResolution = fc.record({ resolvedTo: fc.option(fc.constantFrom(...HOSTILE_RESOLUTIONS), { nil: undefined }), kind: fc.constantFrom('dir', 'file', 'other') as fc.Arbitrary<PathFact['kind']> });

const idMapping = fc.record({ containerID: fc.constantFrom(0, 1, 1000), hostID: fc.constantFrom(0, 1, 100000, 268435456, 4294901760), size: fc.constantFrom(1, 1000, 65536, 4294967295) });

interface Facts {
  readonly fromCaller: boolean;
  /** The caller's own mappings (used when fromCaller). */
  readonly callerMappings: readonly { containerID: number; hostID: number; size: number }[];
  readonly bindResolutions: readonly { resolvedTo: string | undefined; kind: PathFact['kind'] }[];
  readonly cgroupHierarchies: boolean;
  readonly join: boolean;
  readonly ownership: Plan['ownership']['mode'];
  readonly hostNamespaces: readonly string[];
  readonly systemdInit: boolean;
  readonly systemdDriver: boolean;
  readonly overlay: boolean;
  readonly bindHow: 'idmap' | 'chown' | 'none';
}

const facts: fc.Arbitrary<Facts> = fc.record({
  fromCaller: fc.boolean(),
  callerMappings: fc.array(idMapping, { minLength: 1, maxLength: 3 }),
  bindResolutions: fc.array(bindResolution, { minLength: 6, maxLength: 6 }),
  // Mostly cgroupfs with known hierarchies: the case that asks for cgroup-delegate actions.
  cgroupHierarchies: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  join: fc.boolean(),
  ownership: fc.constantFrom('idmap', 'clone', 'chown', 'shiftfs'),
  hostNamespaces: fc.subarray([...NS_TYPES]),
  systemdInit: fc.boolean(),
  systemdDriver: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  overlay: fc.boolean(),
  bindHow: fc.constantFrom('idmap', 'chown', 'none'),
});

const CGROUP_HIERARCHIES = [
  { controllers: 'memory', path: '/system.slice/containerd.service', mountpoint: '/sys/fs/cgroup/memory', mountRoot: '/' },
  { controllers: 'cpu,cpuacct', path: '/', mountpoint: '/sys/fs/cgroup/cpu,cpuacct', mountRoot: '/' },
];

function planFor(s: Spec, f: Facts): Plan {
  const bindSources = new Map<number, PathFact>();
  (s.mounts ?? []).forEach((m, i) => {
    const how = f.bindResolutions[i];
    if (m.type === 'bind' && m.source?.startsWith('/')) bindSources.set(i, { requested: m.source, resolved: how?.resolvedTo ?? m.source, kind: how?.kind ?? 'dir' });
  });
  const mapping = f.fromCaller ? [...f.callerMappings] : ROOT_MAPPING;
  return planWith({
    containerId: 'fuzz',
    bundleDir: '/run/bundles/fuzz',
    runDir: RUN_DIR,
    userns: { uidMappings: mapping, gidMappings: mapping, fromCaller: f.fromCaller, ...(f.join ? { join: { path: '/proc/7/ns/user', types: ['network'] } } : {}) },
    rootfs: { requested: DOCKER_ROOTFS, resolved: DOCKER_ROOTFS, kind: 'dir', overlay: f.overlay ? { ...DOCKER_OVERLAY, lowerdirs: ['/var/lib/docker/overlay2/img/diff'], options: {} } : undefined },
    ownership: { mode: f.ownership, bindSources: new Map([...bindSources.values()].map((b) => [b.resolved, f.bindHow])) },
    bindSources,
    settings: readSettings(s),
    systemdInit: f.systemdInit,
    netnsHook: NETNS_HOOK,
    hostNamespaces: new Set(f.hostNamespaces),
    cgroups: { hierarchies: f.cgroupHierarchies ? CGROUP_HIERARCHIES : [], systemdDriver: f.systemdDriver },
    kernelFsDirs: ['/sys/kernel/debug'],
  });
}

test('the transform returns a schema-valid config or a SysruncError for any generated config and host facts', () => {
  let valid = 0;
  let refused = 0;
  fc.assert(
    fc.property(spec, facts, (s, f) => {
      let out;
      try {
        out = runPipeline(s, planFor(s, f));
      } catch (err) {
        if (!(err instanceof SysruncError)) throw err;
        assert.equal(err.message.includes('\n'), false, `a multi-line error: ${err.message}`);
        refused++;
        return;
      }
      assert.deepEqual(configSchemaErrors(out.spec), []);
      valid++;
    }),
    withSeed(0),
  );
  // Both outcomes must be reached, or the generators test nothing.
  assert.ok(valid > 0 && refused > 0, `valid ${valid}, refused ${refused}`);
});

test('every host action, of every kind, stays within what the facts allow', (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  const checked = new Map<HostAction['kind'], number>();
  fc.assert(
    fc.property(spec, facts, (s, f) => {
      let plan;
      let actions;
      try {
        plan = planFor(s, f);
        actions = runPipeline(s, plan).actions;
      } catch (err) {
        if (err instanceof SysruncError) return;
        throw err;
      }
      for (const a of actions) {
        checkAction(a, plan);
        checked.set(a.kind, (checked.get(a.kind) ?? 0) + 1);
      }
    }),
    // Most generated cases are refused; more runs make every action kind show up with any seed.
    { ...withSeed(1), numRuns: RUNS * 4 },
  );
  // A generator change that stops producing some kind would otherwise leave it unchecked.
  const kinds: HostAction['kind'][] = ['idmapped-mount', 'rootfs-clone', 'chown-tree', 'cgroup-delegate', 'bind-mount', 'overlay-mount'];
  assert.deepEqual(kinds.filter((k) => (checked.get(k) ?? 0) === 0), [], `actions checked per kind: ${JSON.stringify(Object.fromEntries(checked))}`);
});

const insideRunDir = (p: string): boolean => p.startsWith(`${RUN_DIR}/`) && !p.split('/').includes('..');

/** What a host action may touch: targets in the run dir; sources and chowned paths from the facts only. */
function checkAction(a: HostAction, plan: Plan): void {
  const rootfsPaths = [plan.rootfs.resolved, ...(plan.rootfs.overlay?.lowerdirs ?? [])];
  const bindResolved = [...plan.bindSources.values()].map((b) => b.resolved);
  const overlay = plan.rootfs.overlay;
  const upperParent = overlay?.upperdir === undefined ? [] : [path.dirname(overlay.upperdir)];
  switch (a.kind) {
    case 'idmapped-mount':
    case 'bind-mount':
      assert.ok(insideRunDir(a.target), `${a.kind} targets ${a.target}`);
      assert.ok([...rootfsPaths, ...upperParent, ...bindResolved].includes(a.source), `${a.kind} mounts ${a.source}, which no fact names`);
      if (bindResolved.includes(a.source) && !rootfsPaths.includes(a.source) && !upperParent.includes(a.source)) {
        assert.notEqual(plan.ownership.bindSources.get(a.source), 'chown', `${a.source} is to be shifted in place, not mounted`);
      }
      break;
    case 'chown-tree':
      // Only the rootfs in chown mode, or a bind source the manager chose to shift: never anything else.
      assert.ok(
        (a.path === plan.rootfs.resolved && plan.ownership.mode === 'chown') || plan.ownership.bindSources.get(a.path) === 'chown',
        `chown-tree of ${a.path}, which the manager did not choose to shift`,
      );
      break;
    case 'cgroup-delegate':
      for (const dir of a.dirs) {
        const h = plan.cgroups.hierarchies.find((x) => dir.startsWith(`${x.mountpoint}/`));
        assert.ok(h !== undefined && !dir.split('/').includes('..') && dir !== h.mountpoint, `cgroup-delegate of ${dir}: not a cgroup below a hierarchy's mount`);
      }
      break;
    case 'rootfs-clone':
      assert.ok(insideRunDir(a.target), `rootfs-clone targets ${a.target}`);
      assert.deepEqual([a.upperdir, a.workdir, a.lowerdirs], [overlay?.upperdir, overlay?.workdir, overlay?.lowerdirs]);
      break;
    case 'overlay-mount':
      assert.ok(insideRunDir(a.target), `overlay-mount targets ${a.target}`);
      for (const layer of [...a.lowerdirs, a.upperdir, a.workdir]) if (layer !== undefined) assert.ok(insideRunDir(layer), `overlay layer ${layer} outside the run dir`);
      break;
  }
}

test('the transform never changes the config it was given', () => {
  fc.assert(
    fc.property(spec, facts, (s, f) => {
      const before = JSON.stringify(s);
      try {
        runPipeline(s, planFor(s, f));
      } catch (err) {
        if (!(err instanceof SysruncError)) throw err;
      }
      assert.equal(JSON.stringify(s), before);
    }),
    { ...withSeed(2), numRuns: Math.ceil(RUNS / 3) },
  );
});
