// A system container's /dev/kmsg is /dev/null (system-mounts.ts), which cannot be polled:
// systemd-journald 262 (257 did not) exits when told to read it (Debian sid's systemd booted
// "degraded" under sysrunc). systemd.ts binds sysrunc's journald drop-in (ReadKMsg=no) into /run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Spec } from '../../src/oci/spec.ts';
import type { Plan } from '../../src/spec-transform/types.ts';
import { DEFAULT_SETTINGS } from '../../src/spec-transform/settings.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { JOURNALD_CONFIG_FILE, JOURNALD_CONFIG_TARGET } from '../../src/spec-transform/systemd.ts';
import { assertValidConfig } from '../helpers/schema.ts';

const SHIPPED = path.resolve(import.meta.dirname, '../../config', JOURNALD_CONFIG_FILE);

function systemdSpec(extraMounts: NonNullable<Spec['mounts']> = []): Spec {
  return {
    ociVersion: '1.0.2-dev',
    process: { user: { uid: 0, gid: 0 }, args: ['/sbin/init'], cwd: '/', env: ['PATH=/bin'] },
    root: { path: '/var/lib/docker/overlay2/abc/merged' },
    hostname: 'c1',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      ...extraMounts,
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
  };
}

function plan(overrides: Partial<Plan> = {}): Plan {
  return {
    containerId: 'c1',
    bundleDir: '/run/bundle/c1',
    runDir: '/run/sysrunc/c1',
    userns: {
      uidMappings: [{ containerID: 0, hostID: 268435456, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 268435456, size: 65536 }],
      fromCaller: false,
    },
    rootfs: { requested: '/var/lib/docker/overlay2/abc/merged', resolved: '/var/lib/docker/overlay2/abc/merged', kind: 'dir', overlay: undefined },
    bindSources: new Map(),
    settings: DEFAULT_SETTINGS,
    hostCapabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
    systemdInit: true,
    hookBinary: '/opt/sysrunc/bin/sysrunc-delegate-cgroups',
    journaldConfig: SHIPPED,
    hostNamespaces: new Set(['user', 'cgroup']),
    volumeMounts: [],
    cgroups: { hierarchies: [], systemdDriver: false },
    kernelFsDirs: [],
    lockedBindFlags: new Map(),
    ownership: { mode: 'idmap', bindSources: new Map() },
    ...overrides,
  };
}

const dropIn = (spec: Spec) => spec.mounts?.filter((m) => m.destination === JOURNALD_CONFIG_TARGET) ?? [];

test('a systemd system container gets the journald drop-in read-only in /run, after the /run tmpfs', () => {
  const { spec } = runPipeline(systemdSpec(), plan());
  assert.deepEqual(dropIn(spec), [{ destination: JOURNALD_CONFIG_TARGET, type: 'bind', source: SHIPPED, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] }]);
  const destinations = spec.mounts?.map((m) => m.destination) ?? [];
  assert.ok(destinations.indexOf('/run') < destinations.indexOf(JOURNALD_CONFIG_TARGET));
  assert.equal(spec.mounts?.find((m) => m.destination === '/dev/kmsg')?.source, '/dev/null');
  assertValidConfig(spec);
});

test('the shipped drop-in tells journald not to read /dev/kmsg', () => {
  const lines = readFileSync(SHIPPED, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(lines, ['[Journal]', 'ReadKMsg=no']);
});

test('a container whose init is not systemd gets no journald drop-in', () => {
  const { spec } = runPipeline(systemdSpec(), plan({ systemdInit: false }));
  assert.deepEqual(dropIn(spec), []);
});

test('a caller that mounts its own /dev/kmsg keeps journald reading it', () => {
  const { spec } = runPipeline(systemdSpec([{ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['rbind', 'rw'] }]), plan());
  assert.deepEqual(dropIn(spec), []);
});

test('a /run the caller bound from the host gets no drop-in (runc would make its directory there)', () => {
  const { spec } = runPipeline(systemdSpec([{ destination: '/run', type: 'bind', source: '/srv/run', options: ['rbind', 'rw'] }]), plan());
  assert.deepEqual(dropIn(spec), []);
});

test('an install without the drop-in file binds nothing', () => {
  const { journaldConfig: _none, ...withoutFile } = plan();
  const { spec } = runPipeline(systemdSpec(), withoutFile);
  assert.deepEqual(dropIn(spec), []);
});
