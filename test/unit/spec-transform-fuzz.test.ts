// Property-based fuzz of the whole create-time transform (settings + the pipeline) over generated
// configs and host facts: it returns a config valid against the OCI schema, or throws a
// SysruncError (a one-line error for the user); never any other exception. Every host action it
// asks for targets the container's own run dir. Runs are bounded (FUZZ_RUNS, default 300).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Mount, Spec } from '../../src/oci/spec.ts';
import type { Plan, PathFact } from '../../src/spec-transform/types.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { readSettings } from '../../src/spec-transform/setting-sources.ts';
import { SysruncError } from '../../src/errors.ts';
import { configSchemaErrors } from '../helpers/schema.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const RUN_DIR = '/run/sysrunc/containers/fuzz';

const absPath = fc.array(fc.constantFrom('var', 'lib', 'docker', 'etc', 'hosts', 'data', 'x', '..', '.', 'run', 'sys', 'proc', 'dev', 'a b', 'ü'), { minLength: 0, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);

const mount: fc.Arbitrary<Mount> = fc.record(
  {
    destination: absPath,
    type: fc.constantFrom('bind', 'tmpfs', 'proc', 'sysfs', 'mqueue', 'devpts', 'cgroup', 'overlay', 'none'),
    source: fc.oneof(absPath, fc.constantFrom('tmpfs', 'proc', 'sysfs', 'shm')),
    options: fc.array(fc.constantFrom('rbind', 'bind', 'ro', 'rw', 'nosuid', 'nodev', 'noexec', 'rprivate', 'idmap', 'mode=755', 'size=64k'), { maxLength: 5 }),
  },
  { requiredKeys: ['destination'] },
);

const NS_TYPES = ['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup', 'time'] as const;
const namespace = fc.record({ type: fc.constantFrom(...NS_TYPES), path: fc.option(fc.constantFrom('/proc/1/ns/net', '/var/run/netns/cni-1', '/proc/42/ns/ipc'), { nil: undefined }) }).map((ns) =>
  ns.path === undefined ? { type: ns.type } : { type: ns.type, path: ns.path },
);

// Settings, well- and ill-formed: an unknown or malformed one must be a SysruncError.
const settingEnv = fc.constantFrom(
  'SYSRUNC_USERNS_SIZE=65536', 'SYSRUNC_USERNS_SIZE=abc', 'SYSRUNC_SYSCONT=false', 'SYSRUNC_SYSCONT=maybe', 'SYSRUNC_CAPABILITIES=caller',
  'SYSRUNC_SYSTEMD=true', 'SYSRUNC_STORE_VOLUMES=false', 'SYSRUNC_OWNERSHIP=chown', 'SYSRUNC_BIND_OWNERSHIP=host-root', 'SYSRUNC_BOGUS=1', 'PATH=/bin',
);
const annotations = fc.dictionary(
  fc.constantFrom('io.sysrunc.syscont', 'io.sysrunc.capabilities', 'io.sysrunc.bind-ownership', 'io.sysrunc.nope', 'io.kubernetes.cri.container-type', 'org.example'),
  fc.constantFrom('true', 'false', 'all', 'caller', 'host-root', 'container', 'sandbox', ''),
);

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

interface Facts {
  readonly fromCaller: boolean;
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
  join: fc.boolean(),
  ownership: fc.constantFrom('idmap', 'clone', 'chown', 'shiftfs'),
  hostNamespaces: fc.subarray([...NS_TYPES]),
  systemdInit: fc.boolean(),
  systemdDriver: fc.boolean(),
  overlay: fc.boolean(),
  bindHow: fc.constantFrom('idmap', 'chown', 'none'),
});

function planFor(s: Spec, f: Facts): Plan {
  const bindSources = new Map<number, PathFact>();
  (s.mounts ?? []).forEach((m, i) => {
    if (m.type === 'bind' && m.source?.startsWith('/')) bindSources.set(i, { requested: m.source, resolved: m.source, kind: 'dir' });
  });
  const mapping = [{ containerID: 0, hostID: 268435456, size: 65536 }];
  return {
    containerId: 'fuzz',
    bundleDir: '/run/bundles/fuzz',
    runDir: RUN_DIR,
    userns: { uidMappings: mapping, gidMappings: mapping, fromCaller: f.fromCaller, ...(f.join ? { join: { path: '/proc/7/ns/user', types: ['network'] } } : {}) },
    rootfs: {
      requested: '/var/lib/docker/overlay2/abc/merged',
      resolved: '/var/lib/docker/overlay2/abc/merged',
      kind: 'dir',
      overlay: f.overlay ? { lowerdirs: ['/var/lib/docker/overlay2/img/diff'], upperdir: '/var/lib/docker/overlay2/abc/diff', workdir: '/var/lib/docker/overlay2/abc/work', options: {} } : undefined,
    },
    ownership: { mode: f.ownership, bindSources: new Map([...bindSources.values()].map((b) => [b.resolved, f.bindHow])) },
    bindSources,
    settings: readSettings(s),
    hostCapabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN'],
    systemdInit: f.systemdInit,
    hookBinary: '/opt/sysrunc/bin/sysrunc-delegate-cgroups',
    netnsHook: '/opt/sysrunc/bin/sysrunc-adopt-netns',
    hostNamespaces: new Set(f.hostNamespaces),
    volumeMounts: [],
    cgroups: { hierarchies: [], systemdDriver: f.systemdDriver },
    kernelFsDirs: ['/sys/kernel/debug'],
    lockedBindFlags: new Map(),
  };
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
    { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20261128) },
  );
  // Both outcomes must be reached, or the generators test nothing.
  assert.ok(valid > 0 && refused > 0, `valid ${valid}, refused ${refused}`);
});

test('every host action the transform asks for targets the container\'s own run dir', () => {
  fc.assert(
    fc.property(spec, facts, (s, f) => {
      let actions;
      try {
        actions = runPipeline(s, planFor(s, f)).actions;
      } catch (err) {
        if (err instanceof SysruncError) return;
        throw err;
      }
      for (const a of actions) {
        if ('target' in a) assert.ok(a.target.startsWith(`${RUN_DIR}/`), `${a.kind} targets ${a.target}`);
      }
    }),
    { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20261128) + 1 },
  );
});

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
    { numRuns: Math.ceil(RUNS / 3) },
  );
});
