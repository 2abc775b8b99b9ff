// The manager learns what the real runc does from `<runc> features` (host/runc-features.ts): the
// answer is read by the reader the caller hands in (the host layer knows no transform), and a
// runtime that gives no readable answer leaves the caller's fallback facts, with why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learnRuntimeFeatures } from '../../src/host/runc-features.ts';
import { RUNC_1_1_FEATURES, runtimeFeaturesOf } from '../../src/spec-transform/runtime-features.ts';
import { bins } from '../rig/paths.ts';

test('the answer of this host\'s runc 1.1 is read by the caller\'s reader: runc 1.1\'s facts, no problem', () => {
  assert.deepEqual(learnRuntimeFeatures(bins.runc, runtimeFeaturesOf, { idmapMounts: true, joinsHostOwnedNamespaces: true }), { features: RUNC_1_1_FEATURES });
});

test('the reader gets runc\'s answer as parsed JSON', () => {
  const learned = learnRuntimeFeatures(bins.runc, (doc) => (doc as { ociVersionMin?: unknown }).ociVersionMin, 'none');
  assert.equal(learned.features, '1.0.0');
});

test('a runtime that cannot be run leaves the fallback facts and says why in one line', () => {
  const learned = learnRuntimeFeatures('/nonexistent/runc', runtimeFeaturesOf, RUNC_1_1_FEATURES);
  assert.equal(learned.features, RUNC_1_1_FEATURES);
  assert.match(learned.problem ?? '', /^\/nonexistent\/runc features: .*ENOENT[^\n]*$/);
});

test('a runtime whose answer is not JSON leaves the fallback facts and says so', () => {
  const learned = learnRuntimeFeatures('/bin/echo', runtimeFeaturesOf, RUNC_1_1_FEATURES);
  assert.equal(learned.features, RUNC_1_1_FEATURES);
  assert.match(learned.problem ?? '', /^\/bin\/echo features: not JSON: /);
});
