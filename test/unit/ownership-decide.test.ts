import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideOwnership, OwnershipUnavailableError, type OwnershipHost, type OwnershipRequest } from '../../src/manager/ownership/decide.ts';

const NO_SHIFTFS = { available: false, reason: 'shiftfs is not registered in /proc/filesystems' };
const idmapEverywhere: OwnershipHost = { defaultMode: 'auto', shiftfs: NO_SHIFTFS, probe: () => ({ supported: true }) };
const idmapNowhere: OwnershipHost = { ...idmapEverywhere, probe: (p) => ({ supported: false, reason: `idmapped mounts not supported by filesystem nfs at ${p}: EINVAL` }) };

function request(o: Partial<OwnershipRequest> = {}): OwnershipRequest {
  return {
    requested: 'auto',
    rootfsPaths: ['/var/lib/docker/overlay2/img/diff', '/var/lib/docker/overlay2/c/diff'],
    overlay: true,
    upperdir: '/var/lib/docker/overlay2/c/diff',
    autoRemove: false,
    bindSources: [{ path: '/srv/data', readOnly: false }, { path: '/etc/localtime', readOnly: true }],
    ...o,
  };
}

test('auto picks idmap where every rootfs layer can be idmapped', () => {
  const d = decideOwnership(request(), idmapEverywhere);
  assert.equal(d.mode, 'idmap');
  assert.deepEqual(d.bindSources, [{ path: '/srv/data', how: 'idmap' }, { path: '/etc/localtime', how: 'idmap' }]);
});

test('auto falls back to clone for an overlay whose layers cannot be idmapped', () => {
  const d = decideOwnership(request(), idmapNowhere);
  assert.equal(d.mode, 'clone');
});

test('auto falls back to chown for a directory rootfs that cannot be idmapped', () => {
  assert.equal(decideOwnership(request({ overlay: false, rootfsPaths: ['/srv/rootfs'] }), idmapNowhere).mode, 'chown');
});

test('one layer that cannot be idmapped rules out idmap for the rootfs', () => {
  const host: OwnershipHost = { ...idmapEverywhere, probe: (p) => (p.endsWith('/c/diff') ? { supported: false, reason: 'nope' } : { supported: true }) };
  assert.equal(decideOwnership(request(), host).mode, 'clone');
});

test('without idmap, writable bind sources are chowned and read-only ones left alone', () => {
  assert.deepEqual(decideOwnership(request(), idmapNowhere).bindSources, [{ path: '/srv/data', how: 'chown' }, { path: '/etc/localtime', how: 'none' }]);
});

test('in idmap mode a bind source on a filesystem without idmapped mounts is chowned', () => {
  const host: OwnershipHost = { ...idmapEverywhere, probe: (p) => (p === '/srv/data' ? { supported: false, reason: 'nfs' } : { supported: true }) };
  assert.deepEqual(decideOwnership(request(), host).bindSources, [{ path: '/srv/data', how: 'chown' }, { path: '/etc/localtime', how: 'idmap' }]);
});

test('the manager default forces a mode for containers that ask for auto', () => {
  assert.equal(decideOwnership(request(), { ...idmapEverywhere, defaultMode: 'clone' }).mode, 'clone');
});

test('a container\'s own setting wins over the manager default', () => {
  assert.equal(decideOwnership(request({ requested: 'idmap' }), { ...idmapEverywhere, defaultMode: 'clone' }).mode, 'idmap');
});

test('a forced mode that cannot work names the setting it came from and why', () => {
  assert.throws(
    () => decideOwnership(request({ requested: 'idmap', origin: 'annotation io.sysrunc.ownership' }), idmapNowhere),
    (err: unknown) => err instanceof OwnershipUnavailableError && /^annotation io\.sysrunc\.ownership: ownership mode idmap was forced but cannot work here: idmapped mounts not supported by filesystem nfs/.test(err.message),
  );
  assert.throws(() => decideOwnership(request(), { ...idmapNowhere, defaultMode: 'idmap' }), /: sysrunc-mgr --ownership: ownership mode idmap was forced/);
});

test('a loaded shiftfs module is not chosen while sysrunc cannot make shiftfs mounts', () => {
  const host: OwnershipHost = { ...idmapNowhere, shiftfs: { available: true, reason: 'shiftfs is registered in /proc/filesystems' } };
  assert.equal(decideOwnership(request(), host).mode, 'clone');
  assert.throws(() => decideOwnership(request({ requested: 'shiftfs' }), host), /does not make shiftfs mounts yet/);
});

test('with idmap forced, a bind source that cannot be idmapped is not chowned (its mount fails instead)', () => {
  const host: OwnershipHost = { ...idmapEverywhere, probe: (p) => (p === '/srv/data' ? { supported: false, reason: 'nfs' } : { supported: true }) };
  assert.deepEqual(decideOwnership(request({ requested: 'idmap' }), host).bindSources, [{ path: '/srv/data', how: 'idmap' }, { path: '/etc/localtime', how: 'idmap' }]);
});
