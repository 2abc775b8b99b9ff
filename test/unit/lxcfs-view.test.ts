// The lxcfs-view transform: which binds a system container gets from sysrunc's lxcfs, and when not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec.ts';
import type { Plan } from '../../src/spec-transform/types.ts';
import { DEFAULT_SETTINGS } from '../../src/spec-transform/settings.ts';
import { resolveSettings } from '../../src/spec-transform/setting-sources.ts';
import { lxcfsView, type LxcfsFact } from '../../src/spec-transform/lxcfs-view.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { lxcfsCpuset, parseCpuList } from '../../src/spec-transform/lxcfs-cpuset.ts';
import { LXCFS_CONTAINER_FILES, lxcfsFilePair, lxcfsLayout } from '../../src/manager/lxcfs/layout.ts';
import { assertValidConfig } from '../helpers/schema.ts';
import { planWith } from '../helpers/plan.ts';
import { dockerConfig, PROC_MOUNT } from '../helpers/docker-config.ts';

const layout = lxcfsLayout('/run/sysrunc');
const FACT: LxcfsFact = { files: LXCFS_CONTAINER_FILES.map((destination) => ({ destination, source: lxcfsFilePair(layout, destination).view })), onlineCpus: [0, 1, 2, 3] };

/** Docker's config: /proc and /sys, where lxcfs's files go over. */
const spec = (extra: Partial<Spec> = {}): Spec => dockerConfig([PROC_MOUNT, { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] }], extra);

/** A host whose sysrunc lxcfs is up. */
const plan = (overrides: Partial<Plan> = {}): Plan => planWith({ lxcfs: FACT, ...overrides });

const lxcfsMounts = (s: Spec) => (s.mounts ?? []).filter((m) => m.source?.startsWith(`${layout.view}/`));

test('a system container gets a read-only bind of each lxcfs file, after /proc and /sys', () => {
  const { spec: out, actions } = lxcfsView.apply(spec(), plan());
  assert.deepEqual(actions, []);
  assert.deepEqual(
    lxcfsMounts(out).map((m) => [m.destination, m.source]),
    LXCFS_CONTAINER_FILES.map((f) => [f, `${layout.view}${f}`]),
  );
  for (const m of lxcfsMounts(out)) assert.deepEqual(m.options, ['rbind', 'ro', 'nosuid', 'nodev', 'noexec', 'rslave']);
  assert.deepEqual(out.mounts?.slice(0, 2).map((m) => m.destination), ['/proc', '/sys']);
});

test('the binds cover the eight files the issue lists', () => {
  assert.deepEqual([...LXCFS_CONTAINER_FILES].sort(), ['/proc/cpuinfo', '/proc/diskstats', '/proc/loadavg', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/sys/devices/system/cpu/online']);
});

test('io.sysrunc.lxcfs=false leaves the kernel /proc files', () => {
  const settings = resolveSettings(spec({ annotations: { 'io.sysrunc.lxcfs': 'false' } }), {}).settings;
  assert.equal(settings.lxcfs, false);
  assert.deepEqual(lxcfsMounts(lxcfsView.apply(spec(), plan({ settings })).spec), []);
});

test('SYSRUNC_LXCFS=0 in the environment turns it off too', () => {
  const settings = resolveSettings(spec({ process: { cwd: '/', args: ['sh'], env: ['SYSRUNC_LXCFS=0'] } }), {}).settings;
  assert.equal(settings.lxcfs, false);
});

test('a malformed io.sysrunc.lxcfs is an error naming it', () => {
  assert.throws(() => resolveSettings(spec({ annotations: { 'io.sysrunc.lxcfs': 'maybe' } }), {}).settings, /annotation io\.sysrunc\.lxcfs: "maybe" is not true or false/);
});

test('without a running lxcfs (no fact) nothing is added', () => {
  assert.deepEqual(lxcfsMounts(lxcfsView.apply(spec(), plan({ lxcfs: undefined })).spec), []);
});

test('a container that is not a system container (syscont=false) gets no lxcfs binds', () => {
  assert.deepEqual(lxcfsMounts(lxcfsView.apply(spec(), plan({ settings: { ...DEFAULT_SETTINGS, systemContainer: false } })).spec), []);
});

test("a caller's mount at one of the paths wins over lxcfs's", () => {
  const own = { destination: '/proc/meminfo', type: 'bind', source: '/srv/meminfo', options: ['bind', 'ro'] };
  const out = lxcfsView.apply(spec({ mounts: [...(spec().mounts ?? []), own] }), plan()).spec;
  assert.deepEqual(out.mounts?.filter((m) => m.destination === '/proc/meminfo'), [own]);
  assert.equal(lxcfsMounts(out).length, LXCFS_CONTAINER_FILES.length - 1);
});

test('the whole pipeline with lxcfs gives a schema-valid config', () => {
  const { spec: out } = runPipeline(spec(), plan());
  assertValidConfig(out);
  assert.equal(lxcfsMounts(out).length, LXCFS_CONTAINER_FILES.length);
});

const withCpu = (cpu: NonNullable<NonNullable<NonNullable<Spec['linux']>['resources']>['cpu']>): Spec => spec({ linux: { ...spec().linux, resources: { cpu } } });

test('a CPU quota of 1.5 CPUs (and no cpuset) becomes a cpuset of 2 of the online CPUs, so nproc agrees with lxcfs', () => {
  const cpus = lxcfsCpuset.apply(withCpu({ quota: 150000, period: 100000 }), plan()).spec.linux?.resources?.cpu?.cpus ?? '';
  const list = parseCpuList(cpus);
  assert.equal(list.length, 2);
  for (const c of list) assert.ok([0, 1, 2, 3].includes(c), cpus);
});

test('the cpuset a quota gives depends on the container id, so containers spread over the CPUs', () => {
  const picks = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => lxcfsCpuset.apply(withCpu({ quota: 100000, period: 100000 }), plan({ containerId: id })).spec.linux?.resources?.cpu?.cpus));
  assert.ok(picks.size > 1, [...picks].join(' '));
});

test("a caller's own cpuset, no quota, a quota of every CPU, or lxcfs off leave the cpuset alone", () => {
  const cpusOf = (s: Spec, p: Plan = plan()) => lxcfsCpuset.apply(s, p).spec.linux?.resources?.cpu?.cpus;
  assert.equal(cpusOf(withCpu({ quota: 100000, period: 100000, cpus: '3' })), '3');
  assert.equal(cpusOf(withCpu({ shares: 512 })), undefined);
  assert.equal(cpusOf(withCpu({ quota: 400000, period: 100000 })), undefined);
  assert.equal(cpusOf(withCpu({ quota: 100000, period: 100000 }), plan({ settings: { ...DEFAULT_SETTINGS, lxcfs: false } })), undefined);
  assert.equal(cpusOf(withCpu({ quota: 100000, period: 100000 }), plan({ lxcfs: undefined })), undefined);
});

test('CPU lists parse as the kernel writes them', () => {
  assert.deepEqual(parseCpuList('0-3,6,8-9\n'), [0, 1, 2, 3, 6, 8, 9]);
  assert.deepEqual(parseCpuList('0\n'), [0]);
});
