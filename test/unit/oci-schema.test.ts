import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Spec, State } from '../../src/oci/spec.ts';
import { validateSpecDocument, validateStateDocument } from '../../src/oci/validate.ts';
import {
  assertValidConfig,
  assertValidState,
  configSchemaErrors,
  specSchemaDir,
  stateSchemaErrors,
} from '../helpers/schema.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function runcSpec(...flags: string[]): unknown {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-runc-spec-'));
  try {
    execFileSync('runc', ['spec', ...flags], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    return JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function errorPaths(lines: readonly string[]): string[] {
  return [...new Set(lines.map((line) => line.slice(0, line.indexOf(': '))))].sort();
}

const sampleState: State = {
  ociVersion: '1.0.2',
  id: 'web-1',
  status: 'running',
  pid: 4242,
  bundle: '/run/containerd/io.containerd.runtime.v2.task/moby/web-1',
  annotations: { 'org.opencontainers.image.ref.name': 'busybox' },
};

// What sysrunc itself produces for a system container: user namespace with subid maps, an
// idmapped bind mount, mounts with options, seccomp with argument filters.
const userNamespacedConfig: Spec = {
  ociVersion: '1.0.2-dev',
  process: {
    terminal: false,
    user: { uid: 0, gid: 0, additionalGids: [0, 10] },
    args: ['/sbin/init'],
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'container=sysrunc'],
    cwd: '/',
    capabilities: {
      bounding: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      effective: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      permitted: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
    },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }],
    noNewPrivileges: false,
  },
  root: { path: '/var/lib/docker/overlay2/0123abcd/merged', readonly: false },
  hostname: 'sys1',
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755'] },
    {
      destination: '/data',
      type: 'bind',
      source: '/srv/data',
      options: ['rbind', 'rprivate', 'idmap'],
      uidMappings: [{ containerID: 0, hostID: 231072, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 231072, size: 65536 }],
    },
  ],
  linux: {
    uidMappings: [{ containerID: 0, hostID: 231072, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 231072, size: 65536 }],
    namespaces: [{ type: 'pid' }, { type: 'network', path: '/proc/1234/ns/net' }, { type: 'mount' }, { type: 'user' }],
    devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 438, uid: 0, gid: 0 }],
    resources: {
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }],
      memory: { limit: 536870912, swap: -1 },
      pids: { limit: 4096 },
    },
    seccomp: {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [
        { names: ['read', 'write', 'mount'], action: 'SCMP_ACT_ALLOW' },
        {
          names: ['clone'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ],
    },
    rootfsPropagation: 'private',
    sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0' },
    maskedPaths: ['/proc/kcore'],
    readonlyPaths: ['/proc/sysrq-trigger'],
  },
};

// Shape of the config.json dockerd 20.10 (through containerd 1.6) writes for `docker run -d busybox`
// with the default seccomp profile (syscall list shortened), reconstructed from moby 20.10's
// oci_linux.go / profiles/seccomp/default.json; Docker cannot be run on this machine yet.
const docker2010Config = {
  ociVersion: '1.0.2-dev',
  process: {
    user: { uid: 0, gid: 0, additionalGids: [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27] },
    args: ['sh'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=3f4e5d6c7b8a'],
    cwd: '/',
    capabilities: {
      bounding: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW'],
      effective: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW'],
      permitted: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW'],
    },
    apparmorProfile: 'docker-default',
    oomScoreAdj: 0,
  },
  root: { path: '/var/lib/docker/overlay2/5b1c/merged' },
  hostname: '3f4e5d6c7b8a',
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'bind',
      source: '/var/lib/docker/containers/3f4e/mounts/shm',
      options: ['rbind', 'rprivate'],
    },
    {
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: '/var/lib/docker/containers/3f4e/resolv.conf',
      options: ['rbind', 'rprivate'],
    },
  ],
  hooks: {
    prestart: [
      {
        path: '/proc/812/exe',
        args: ['libnetwork-setkey', '-exec-root=/var/run/docker', '3f4e5d6c7b8a9', '0bf16d27a1b4'],
      },
    ],
  },
  linux: {
    sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' },
    resources: {
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
        { allow: true, type: 'c', major: 136, access: 'rwm' },
        { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
      ],
      memory: { disableOOMKiller: false },
      cpu: { shares: 0 },
      blockIO: { weight: 0 },
    },
    cgroupsPath: '/docker/3f4e5d6c7b8a9',
    namespaces: [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }],
    seccomp: {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['accept', 'accept4', 'access', 'bind', 'brk', 'capget'], action: 'SCMP_ACT_ALLOW' },
        {
          names: ['personality'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 4294967295, op: 'SCMP_CMP_EQ' }],
        },
        {
          names: ['clone'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ],
    },
    maskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/sys/firmware'],
    readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
  },
};

test("runc spec's default config is a valid OCI config", () => {
  const doc = runcSpec();
  assert.deepEqual(validateSpecDocument(doc), { ok: true, spec: doc });
  assertValidConfig(doc);
});

test("runc spec --rootless config (user namespace, uid/gid maps) is a valid OCI config", () => {
  const doc = runcSpec('--rootless');
  assert.equal(validateSpecDocument(doc).ok, true);
  assertValidConfig(doc);
});

test('a user-namespaced config with idmapped mounts and seccomp args is a valid OCI config', () => {
  assert.equal(validateSpecDocument(userNamespacedConfig).ok, true);
  assertValidConfig(userNamespacedConfig);
});

test('a Docker 20.10-style config is a valid OCI 1.3.0 config', () => {
  assert.equal(validateSpecDocument(docker2010Config).ok, true);
  assertValidConfig(docker2010Config);
});

test('a config with a string uid is rejected with an error naming /process/user/uid', () => {
  const doc = clone(userNamespacedConfig) as unknown as { process: { user: { uid: unknown } } };
  doc.process.user.uid = 'x';
  assert.deepEqual(validateSpecDocument(doc), { ok: false, errors: ['/process/user/uid: must be integer'] });
});

test('the schema test helper rejects a string uid listing the path', () => {
  const doc = clone(userNamespacedConfig) as unknown as { process: { user: { uid: unknown } } };
  doc.process.user.uid = 'x';
  assert.throws(() => assertValidConfig(doc), /\/process\/user\/uid: must be integer/);
});

test('every problem of a config is reported, one line each', () => {
  const doc = clone(userNamespacedConfig) as unknown as Record<string, Record<string, unknown>>;
  delete doc['process']?.['cwd'];
  (doc['linux']?.['namespaces'] as unknown[]).push({ type: 'bogus' });
  doc['root'] = { path: 3 };
  const result = validateSpecDocument(doc);
  assert.equal(result.ok, false);
  assert.deepEqual(!result.ok && result.errors, [
    '/root/path: must be string',
    "/process: must have required property 'cwd'",
    '/linux/namespaces/4/type: must be equal to one of the allowed values: ' +
      '"mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"',
  ]);
});

test('a document that is not an object is rejected at the root path', () => {
  assert.deepEqual(validateSpecDocument([]), { ok: false, errors: ['/: must be object'] });
});

test('a container state document is valid', () => {
  assert.deepEqual(validateStateDocument(sampleState), { ok: true, state: sampleState });
  assertValidState(sampleState);
});

test('a state with an unknown status is rejected naming /status', () => {
  const result = validateStateDocument({ ...sampleState, status: 'paused' });
  assert.deepEqual(result, {
    ok: false,
    errors: ['/status: must be equal to one of the allowed values: "creating", "created", "running", "stopped"'],
  });
  assert.throws(() => assertValidState({ ...sampleState, status: 'paused' }), /\/status/);
});

test('the generated validators and the test-time ajv agree on good and bad documents', () => {
  const runc = runcSpec() as Spec;
  const configs: unknown[] = [
    runc,
    userNamespacedConfig,
    docker2010Config,
    { ociVersion: '1.3.0' },
    {},
    null,
    'config',
    { ...runc, ociVersion: 1 },
    { ...runc, mounts: [{ source: '/x' }] },
    { ...runc, mounts: [{ destination: '/x', uidMappings: [{ containerID: 0, hostID: -1, size: 1 }] }] },
    { ...runc, linux: { ...runc.linux, uidMappings: [{ containerID: 0, hostID: 4294967296, size: 1 }] } },
    { ...runc, linux: { ...runc.linux, namespaces: [{ type: 'time' }, { path: '/proc/1/ns/net' }, 7] } },
    { ...runc, linux: { seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'x' }] } } },
    { ...runc, linux: { resources: { blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 70000 }] } } } },
    { ...runc, linux: { personality: { domain: 'LINUX64' } } },
    { ...runc, process: { ...runc.process, rlimits: [{ type: 'NOFILE', soft: 1, hard: 1.5 }] } },
    { ...runc, hooks: { prestart: [{ args: ['x'] }], poststop: [{ path: '/bin/true', timeout: 0 }] } },
    { ...runc, annotations: { a: 1 } },
    { ...runc, vm: { hypervisor: {} } },
  ];
  for (const doc of configs) {
    const generated = validateSpecDocument(doc);
    const reference = configSchemaErrors(doc);
    const label = JSON.stringify(doc)?.slice(0, 120);
    assert.equal(generated.ok, reference.length === 0, `validity differs for ${label}: ${reference.join('; ')}`);
    if (!generated.ok) assert.deepEqual(errorPaths(generated.errors), errorPaths(reference), label);
  }
  const states: unknown[] = [sampleState, { ...sampleState, pid: -1 }, { id: 'x' }, { ...sampleState, bundle: 7 }];
  for (const doc of states) {
    const generated = validateStateDocument(doc);
    const reference = stateSchemaErrors(doc);
    assert.equal(generated.ok, reference.length === 0, JSON.stringify(doc));
    if (!generated.ok) assert.deepEqual(errorPaths(generated.errors), errorPaths(reference), JSON.stringify(doc));
  }
});

for (const script of ['gen-spec.mjs', 'gen-validators.mjs']) {
  test(`${script} --check finds the committed output up to date`, () => {
    const run = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', script), '--check'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
  });

  test(`${script} --check exits 1 with a one-line message when the schema has changed`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-schema-'));
    try {
      cpSync(specSchemaDir(), dir, { recursive: true });
      const statePath = path.join(dir, 'state-schema.json');
      const state = JSON.parse(readFileSync(statePath, 'utf8')) as { properties: Record<string, unknown> };
      state.properties['sysruncExtra'] = { type: 'string' };
      writeFileSync(statePath, JSON.stringify(state));
      const run = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', script), '--check'], {
        encoding: 'utf8',
        env: { ...process.env, SYSRUNC_SPEC_SCHEMA_DIR: dir },
      });
      assert.equal(run.status, 1);
      assert.match(run.stderr, /^[^\n]*is stale[^\n]*\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
