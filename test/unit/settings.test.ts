import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SETTINGS, envName, readSettings } from '../../src/spec-transform/settings.ts';
import type { Spec } from '../../src/oci/spec.ts';

const spec = (env: string[] = [], annotations: Record<string, string> = {}): Spec => ({
  ociVersion: '1.0.2',
  process: { cwd: '/', env },
  annotations,
});

test('a config without sysrunc settings gets the defaults', () => {
  assert.deepEqual(readSettings(spec(['PATH=/bin'])), DEFAULT_SETTINGS);
});

test('settings come from SYSRUNC_* environment variables', () => {
  const s = readSettings(spec(['SYSRUNC_USERNS_SIZE=131072', 'SYSRUNC_SYSCONT=false', 'SYSRUNC_STORE_VOLUMES=0']));
  assert.equal(s.usernsSize, 131072);
  assert.equal(s.systemContainer, false);
  assert.equal(s.storeVolumes, false);
});

test('an annotation wins over the environment variable', () => {
  const s = readSettings(spec(['SYSRUNC_SYSTEMD=false'], { 'io.sysrunc.systemd': 'true' }));
  assert.equal(s.systemd, 'true');
});

test('an unknown io.sysrunc annotation is an error naming it', () => {
  assert.throws(() => readSettings(spec([], { 'io.sysrunc.nosuch': '1' })), /annotation io\.sysrunc\.nosuch: unknown sysrunc setting/);
});

test('an unknown SYSRUNC_ variable is an error naming it', () => {
  assert.throws(() => readSettings(spec(['SYSRUNC_NOSUCH=1'])), /environment variable SYSRUNC_NOSUCH: unknown sysrunc setting/);
});

test('a size that is not a whole number is an error naming the annotation', () => {
  assert.throws(() => readSettings(spec([], { 'io.sysrunc.userns.size': 'abc' })), /annotation io\.sysrunc\.userns\.size: "abc" is not a whole number/);
});

test('a value outside the allowed words is an error listing them', () => {
  assert.throws(() => readSettings(spec(['SYSRUNC_OWNERSHIP=magic'])), /"magic" is not one of auto, idmap, shiftfs, clone, chown/);
});

test('other annotations and variables are ignored', () => {
  assert.deepEqual(readSettings(spec(['SYSRUNCX=1', 'HOME=/root'], { 'org.opencontainers.image.ref.name': 'x' })), DEFAULT_SETTINGS);
});

test('setting names map to environment variable names', () => {
  assert.equal(envName('userns.size'), 'SYSRUNC_USERNS_SIZE');
  assert.equal(envName('store-volumes'), 'SYSRUNC_STORE_VOLUMES');
});
