// `sysrunc features`: runc's own answer with what sysrunc adds merged over it, valid against the
// OCI features schema, claiming nothing sysrunc does not do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { SYSRUNC } from '../helpers/manager.ts';
import { bins } from '../rig/paths.ts';
import { featuresSchemaErrors } from '../helpers/schema.ts';

type Json = Record<string, unknown>;

function features(bin: string): Json {
  const r = spawnSync(bin, ['features'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Json;
}

const sysrunc = features(SYSRUNC);
const runc = features(bins.runc);
const linux = (doc: Json) => (doc.linux ?? {}) as Json;

test('sysrunc features is valid against the OCI features schema', () => {
  assert.deepEqual(featuresSchemaErrors(sysrunc), []);
});

test('every part of runc\'s answer that sysrunc does not extend is kept as runc gave it', () => {
  for (const [key, value] of Object.entries(runc)) {
    if (key === 'linux' || key === 'annotations') continue;
    assert.deepEqual(sysrunc[key], value, key);
  }
  for (const [key, value] of Object.entries(linux(runc))) {
    if (key === 'namespaces' || key === 'mountExtensions') continue;
    assert.deepEqual(linux(sysrunc)[key], value, `linux.${key}`);
  }
  for (const [key, value] of Object.entries((runc.annotations ?? {}) as Json)) assert.equal((sysrunc.annotations as Json)[key], value, `annotations.${key}`);
});

test('sysrunc features lists the user and cgroup namespaces every sysrunc container gets', () => {
  const namespaces = linux(sysrunc).namespaces as string[];
  assert.ok(namespaces.includes('user') && namespaces.includes('cgroup'), namespaces.join(','));
});

test('mount-level idmap support is runc\'s to claim: sysrunc passes such mounts to runc unchanged', () => {
  const runcIdmap = ((linux(runc).mountExtensions ?? {}) as Json).idmap;
  assert.deepEqual(((linux(sysrunc).mountExtensions ?? {}) as Json).idmap, runcIdmap ?? { enabled: false });
});

test('sysrunc features names sysrunc\'s version and the io.sysrunc settings it accepts', () => {
  const annotations = sysrunc.annotations as Record<string, string>;
  assert.match(annotations['io.sysrunc.version'] ?? '', /^\d+\.\d+\.\d+/);
  assert.ok((annotations['io.sysrunc.settings'] ?? '').split(',').includes('io.sysrunc.userns.size'));
});
