// The tenant service's pure parts: the OCI spec and the way back (Inspect), image chain ids,
// mount checks, log tails, restart back-off, the CLI's --mount flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountFlag } from '../../src/sysrunc-ctl/tenant-commands.ts';
import type { Container } from '../../src/tenants-api/v1.ts';
import { mountProblem } from '../../src/tenants/host-checks.ts';
import { chainId } from '../../src/tenants/image.ts';
import { tailLines } from '../../src/tenants/service.ts';
import { buildLabels, buildSpec, containerFromSpec, TINI_IN_CONTAINER } from '../../src/tenants/spec.ts';
import { backoffMs } from '../../src/tenants/supervisor.ts';

const inputs = (container: Container) => ({ container, rootPath: container.rootfs ?? 'rootfs', netnsPath: container.network ? `/var/run/netns/${container.network.namespace}` : undefined, cgroupsPath: '/t/ns/x', tini: '/usr/bin/tini-static' });

function roundTrip(c: Container): Container {
  const spec = buildSpec(inputs(c));
  const env = (spec['process'] as { env: string[] }).env;
  const addedPath = !(c.env ?? []).some((e) => e.startsWith('PATH='));
  return containerFromSpec(JSON.parse(JSON.stringify(spec)), buildLabels(c, addedPath && env.length > 0));
}

test('a full Container survives the spec and labels unchanged', () => {
  const c: Container = {
    name: 'x', rootfs: '/r', env: ['A=1', 'B='], workingDir: '/w', network: { namespace: 'n1' },
    mounts: [{ source: '/h', target: '/c', type: 'bind', options: ['ro'] }, { source: 't', target: '/t', type: 'tmpfs', options: [] }],
    entrypoint: ['sh', '-c', 'x'], interactive: true, cpu: 1.5, memory: 1 << 30, shutdownTimeout: 3,
  };
  assert.deepEqual(roundTrip(c), c);
});

test('a minimal Container comes back minimal; PATH the service added is not the tenant\'s env', () => {
  const c: Container = { name: 'm', image: 'docker.io/library/bb:local', entrypoint: ['true'], interactive: false };
  assert.deepEqual(roundTrip(c), c);
});

test('a PATH the tenant gave stays in env', () => {
  const c: Container = { name: 'p', rootfs: '/r', env: ['PATH=/bin'], entrypoint: ['true'], interactive: false };
  assert.deepEqual(roundTrip(c), c);
});

test('interactive puts tini first with --, bind-mounted read-only in /dev', () => {
  const spec = buildSpec(inputs({ name: 'i', rootfs: '/r', entrypoint: ['a', 'b'], interactive: true }));
  assert.deepEqual((spec['process'] as { args: string[] }).args, [TINI_IN_CONTAINER, '--', 'a', 'b']);
  const mounts = spec['mounts'] as Array<{ destination: string; options?: string[] }>;
  assert.ok(mounts.find((m) => m.destination === TINI_IN_CONTAINER)?.options?.includes('ro'));
});

test('a bind mount without a bind option gets rbind (runc 1.1 binds only with one)', () => {
  const spec = buildSpec(inputs({ name: 'b', rootfs: '/r', entrypoint: ['x'], mounts: [{ source: '/h', target: '/c', type: 'bind' }] }));
  const m = (spec['mounts'] as Array<{ destination: string; options?: string[] }>).find((x) => x.destination === '/c');
  assert.deepEqual(m?.options, ['rbind']);
});

test('cpu and memory become the cgroup limits', () => {
  const spec = buildSpec(inputs({ name: 'l', rootfs: '/r', entrypoint: ['x'], cpu: 0.25, memory: 8 << 20 }));
  const res = (spec['linux'] as { resources: { cpu: unknown; memory: unknown } }).resources;
  assert.deepEqual(res.cpu, { quota: 25_000, period: 100_000 });
  assert.deepEqual(res.memory, { limit: 8 << 20 });
});

test('the chain id of one layer is its diff id, of more the hash chain (OCI image spec)', () => {
  const a = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';
  assert.equal(chainId([a]), a);
  assert.match(chainId([a, a]), /^sha256:[0-9a-f]{64}$/);
  assert.notEqual(chainId([a, a]), a);
});

test('mount checks name what is wrong', () => {
  const fs = new Set(['tmpfs', 'proc']);
  const has = (p: string) => p === '/exists';
  assert.equal(mountProblem({ source: '/exists', target: '/c', type: 'bind' }, fs, has), undefined);
  assert.match(mountProblem({ source: '/nope', target: '/c', type: 'bind' }, fs, has) ?? '', /bind source \/nope does not exist/);
  assert.match(mountProblem({ source: 'rel', target: '/c', type: 'bind' }, fs, has) ?? '', /not an absolute path/);
  assert.match(mountProblem({ source: 'x', target: '/c', type: 'zfsx' }, fs, has) ?? '', /type zfsx/);
  assert.match(mountProblem({ source: 'x', target: '/a/../b', type: 'tmpfs' }, fs, has) ?? '', /not a clean absolute path/);
  assert.match(mountProblem({ source: 'x', target: '/', type: 'tmpfs' }, fs, has) ?? '', /hide the rootfs/);
  assert.match(mountProblem({ source: 'x', target: '/t', type: 'tmpfs', options: ['a,b'] }, fs, has) ?? '', /single, non-empty/);
});

test('tail keeps the last n lines and the final newline', () => {
  assert.equal(tailLines('a\nb\nc\n', 2), 'b\nc\n');
  assert.equal(tailLines('a\nb\nc', 1), 'c');
  assert.equal(tailLines('a\n', 5), 'a\n');
  assert.equal(tailLines('a\nb\n', undefined), 'a\nb\n');
});

test('restart back-off doubles up to its cap', () => {
  const p = { maxRestarts: 5, baseDelayMs: 100, maxDelayMs: 350 };
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffMs(p, n)), [100, 200, 350, 350]);
});

test('--mount parses type, source, target and options', () => {
  assert.deepEqual(parseMountFlag('source=/a,target=/b,options=ro+nosuid'), [{ source: '/a', target: '/b', type: 'bind', options: ['ro', 'nosuid'] }]);
  assert.deepEqual(parseMountFlag('type=tmpfs,src=t,dst=/t'), [{ source: 't', target: '/t', type: 'tmpfs' }]);
  assert.throws(() => parseMountFlag('target=/b'), /expected type=bind/);
});
