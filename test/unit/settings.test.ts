// Who may choose each setting (src/spec-transform/setting-sources.ts): annotations and the
// operator's runtime flags choose any; the container's environment only the harmless ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SETTINGS, envName } from '../../src/spec-transform/settings.ts';
import { flagName, parseRuntimeFlags, resolveSettings } from '../../src/spec-transform/setting-sources.ts';
import type { Spec } from '../../src/oci/spec.ts';

const spec = (env: string[] = [], annotations: Record<string, string> = {}): Spec => ({
  ociVersion: '1.0.2',
  process: { cwd: '/', env },
  annotations,
});

/** Every setting at its most permissive, as a hostile image's ENV would set them. */
const HOSTILE_ENV = [
  'SYSRUNC_USERNS_SIZE=16777216',
  'SYSRUNC_SYSCONT=false',
  'SYSRUNC_CAPABILITIES=caller',
  'SYSRUNC_OWNERSHIP=chown',
  'SYSRUNC_BIND_OWNERSHIP=host-root',
];

test('a config without sysrunc settings gets the defaults', () => {
  assert.deepEqual(resolveSettings(spec(['PATH=/bin']), {}), { settings: DEFAULT_SETTINGS, ignored: [] });
});

test('a widening setting in the container environment is ignored, with a warning naming the variable', () => {
  const { settings, ignored } = resolveSettings(spec(HOSTILE_ENV), {});
  assert.deepEqual(settings, DEFAULT_SETTINGS);
  for (const entry of HOSTILE_ENV) {
    const name = entry.slice(0, entry.indexOf('='));
    assert.ok(ignored.some((line) => line.startsWith(`environment variable ${name}: `) && line.includes('ignored')), `${name} in ${ignored.join(' | ')}`);
  }
});

test('an unknown SYSRUNC_ variable in the environment is ignored with a warning, not an error', () => {
  const { settings, ignored } = resolveSettings(spec(['SYSRUNC_NOSUCH=1', 'SYSRUNC_MGR_SOCKET=/x']), {});
  assert.deepEqual(settings, DEFAULT_SETTINGS);
  assert.equal(ignored.length, 2);
  assert.match(ignored[0] ?? '', /^environment variable SYSRUNC_NOSUCH: not a sysrunc setting; ignored/);
});

test('the harmless settings systemd and store-volumes are taken from the environment', () => {
  const { settings, ignored } = resolveSettings(spec(['SYSRUNC_SYSTEMD=true', 'SYSRUNC_STORE_VOLUMES=0']), {});
  assert.equal(settings.systemd, 'true');
  assert.equal(settings.storeVolumes, false);
  assert.equal(settings.origins.systemd, 'environment variable SYSRUNC_SYSTEMD');
  assert.deepEqual(ignored, []);
});

test('a malformed harmless variable is ignored with a warning naming it and the value', () => {
  const { settings, ignored } = resolveSettings(spec(['SYSRUNC_SYSTEMD=maybe']), {});
  assert.equal(settings.systemd, 'auto');
  assert.match(ignored[0] ?? '', /environment variable SYSRUNC_SYSTEMD: "maybe" is not one of auto, true, false; ignored/);
});

test('annotations choose every setting', () => {
  const { settings } = resolveSettings(
    spec([], {
      'io.sysrunc.userns.size': '131072',
      'io.sysrunc.syscont': 'false',
      'io.sysrunc.capabilities': 'caller',
      'io.sysrunc.ownership': 'chown',
      'io.sysrunc.bind-ownership': 'host-root',
    }),
    {},
  );
  assert.equal(settings.usernsSize, 131072);
  assert.equal(settings.systemContainer, false);
  assert.equal(settings.capabilities, 'caller');
  assert.equal(settings.ownership, 'chown');
  assert.equal(settings.bindOwnership, 'host-root');
  assert.equal(settings.origins['bind-ownership'], 'annotation io.sysrunc.bind-ownership');
});

test('runtime flags choose every setting', () => {
  const { settings } = resolveSettings(spec(), {
    'sysrunc-userns-size': '131072',
    'sysrunc-syscont': 'false',
    'sysrunc-capabilities': 'caller',
    'sysrunc-ownership': 'clone',
    'sysrunc-bind-ownership': 'host-root',
  });
  assert.equal(settings.usernsSize, 131072);
  assert.equal(settings.systemContainer, false);
  assert.equal(settings.capabilities, 'caller');
  assert.equal(settings.ownership, 'clone');
  assert.equal(settings.bindOwnership, 'host-root');
  assert.equal(settings.origins['userns.size'], 'runtime flag --sysrunc-userns-size');
});

test('an annotation wins over a runtime flag', () => {
  const { settings } = resolveSettings(spec([], { 'io.sysrunc.bind-ownership': 'container' }), { 'sysrunc-bind-ownership': 'host-root' });
  assert.equal(settings.bindOwnership, 'container');
});

test('a runtime flag wins over the environment', () => {
  const { settings } = resolveSettings(spec(['SYSRUNC_SYSTEMD=true']), { 'sysrunc-systemd': 'false' });
  assert.equal(settings.systemd, 'false');
});

test('in a podman config a widening annotation is ignored with a warning, a harmless one is taken', () => {
  const { settings, ignored } = resolveSettings(
    spec([], { 'io.container.manager': 'libpod', 'io.sysrunc.bind-ownership': 'host-root', 'io.sysrunc.systemd': 'true' }),
    {},
  );
  assert.equal(settings.bindOwnership, 'container');
  assert.equal(settings.systemd, 'true');
  assert.match(ignored[0] ?? '', /^annotation io\.sysrunc\.bind-ownership: not taken from a podman config .*--runtime-flag sysrunc-bind-ownership=host-root/);
});

test('an unknown io.sysrunc annotation is an error naming it', () => {
  assert.throws(() => resolveSettings(spec([], { 'io.sysrunc.nosuch': '1' }), {}), /annotation io\.sysrunc\.nosuch: unknown sysrunc setting/);
});

test('a size that is not a whole number is an error naming the annotation', () => {
  assert.throws(() => resolveSettings(spec([], { 'io.sysrunc.userns.size': 'abc' }), {}), /annotation io\.sysrunc\.userns\.size: "abc" is not a whole number/);
});

test('an unknown runtime flag is an error naming it and the known ones', () => {
  assert.throws(() => parseRuntimeFlags({ 'sysrunc-nosuch': '1' }), /runtime flag --sysrunc-nosuch: unknown sysrunc setting \(known: --sysrunc-userns-size,/);
});

test('a runtime flag value outside the allowed words is an error naming the flag and listing them', () => {
  assert.throws(() => parseRuntimeFlags({ 'sysrunc-ownership': 'magic' }), /runtime flag --sysrunc-ownership: "magic" is not one of auto, idmap, shiftfs, clone, chown/);
});

test('other annotations and variables are ignored silently', () => {
  assert.deepEqual(resolveSettings(spec(['SYSRUNCX=1', 'HOME=/root'], { 'org.opencontainers.image.ref.name': 'x' }), {}), { settings: DEFAULT_SETTINGS, ignored: [] });
});

test('setting names map to environment variable and runtime flag names', () => {
  assert.equal(envName('userns.size'), 'SYSRUNC_USERNS_SIZE');
  assert.equal(envName('store-volumes'), 'SYSRUNC_STORE_VOLUMES');
  assert.equal(flagName('userns.size'), 'sysrunc-userns-size');
  assert.equal(flagName('bind-ownership'), 'sysrunc-bind-ownership');
});
