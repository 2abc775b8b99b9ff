// Issue 19: input is whatever runc accepts. Each config of the corpus (test/fixtures/oci-configs,
// captured from the engines on this machine by capture.ts there: containerd's CRI sandbox and
// containers, including Bidirectional and HostToContainer propagation, Docker's, podman's, and
// `runc spec`'s) is accepted, and what sysrunc writes from it is a valid OCI config that differs
// from the caller's only where sysrunc's transforms change it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Spec } from '../../src/oci/spec.ts';
import { validateInputSpecDocument } from '../../src/oci/runc-accepted.ts';
import { validateSpecDocument } from '../../src/oci/validate.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { resolveSettings } from '../../src/spec-transform/setting-sources.ts';
import { engineOf } from '../../src/spec-transform/engine-capabilities.ts';
import { NETNS_HOOK, planWith } from '../helpers/plan.ts';
import { assertValidConfig } from '../helpers/schema.ts';

const CORPUS = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/oci-configs');
const FILES = readdirSync(CORPUS).filter((f) => f.endsWith('.json')).sort();

/** Where sysrunc's transforms write (README, "System containers"); every other field is the caller's. */
const SYSRUNC_OWNED = [
  /^\/process\/capabilities\//, /^\/root\/path$/, /^\/mounts$/, /^\/hooks(\/|$)/, /^\/linux\/namespaces$/,
  /^\/linux\/[ug]idMappings$/, /^\/linux\/readonlyPaths$/, /^\/linux\/seccomp\/syscalls$/, /^\/linux\/sysctl\//,
  /^\/linux\/rootfsPropagation$/,
];

function load(file: string): Spec {
  return JSON.parse(readFileSync(path.join(CORPUS, file), 'utf8')) as Spec;
}

function transformed(spec: Spec): Spec {
  const rootfs = '/run/bundle/corpus1/rootfs';
  const plan = planWith({
    containerId: 'corpus1',
    bundleDir: '/run/bundle/corpus1',
    runDir: '/run/sysrunc/corpus1',
    rootfs: { requested: rootfs, resolved: rootfs, kind: 'dir', overlay: undefined },
    settings: resolveSettings(spec, {}).settings,
    engine: engineOf(spec, 'corpus1'),
    netnsHook: NETNS_HOOK,
  });
  return runPipeline(spec, plan).spec;
}

/** JSON pointers of the leaves (or arrays) that differ between two documents. */
function changedPaths(a: unknown, b: unknown, at = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) || Array.isArray(b)) return [at];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => changedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}/${k}`));
}

test('the corpus holds the configs of each engine, among them both recursive rootfs propagations', () => {
  for (const name of ['cri-sandbox', 'cri-container', 'cri-container-bidirectional', 'cri-container-host-to-container', 'docker', 'podman', 'runc-spec']) {
    assert.ok(FILES.includes(`${name}.json`), name);
  }
  assert.equal(load('cri-container-bidirectional.json').linux?.rootfsPropagation, 'rshared');
  assert.equal(load('cri-container-host-to-container.json').linux?.rootfsPropagation, 'rslave');
});

for (const file of FILES) {
  test(`${file} is accepted as runc accepts it`, () => {
    const result = validateInputSpecDocument(load(file));
    assert.ok(result.ok, result.ok ? '' : result.errors.join('; '));
  });

  test(`${file}: what sysrunc writes is a valid OCI config, changed only where sysrunc's transforms write`, () => {
    const input = load(file);
    const output = transformed(input);
    assertValidConfig(output);
    const foreign = changedPaths(input, output).filter((p) => !SYSRUNC_OWNED.some((re) => re.test(p)));
    assert.deepEqual(foreign, []);
    // Every mount the caller asked for is still there, in its order, at its destination.
    const destinations = new Set(output.mounts?.map((m) => m.destination));
    assert.deepEqual((input.mounts ?? []).map((m) => m.destination).filter((d) => destinations.has(d)), (input.mounts ?? []).map((m) => m.destination));
  });
}

test('a recursive rootfs propagation is written as the schema\'s value, and only that changes', () => {
  assert.equal(transformed(load('cri-container-bidirectional.json')).linux?.rootfsPropagation, 'shared');
  assert.equal(transformed(load('cri-container-host-to-container.json')).linux?.rootfsPropagation, 'slave');
});

test('a config runc would refuse is still refused, naming the field', () => {
  const spec = load('cri-container-host-to-container.json') as unknown as { linux: { rootfsPropagation: string } };
  spec.linux.rootfsPropagation = 'rsideways';
  const result = validateInputSpecDocument(spec);
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : String(result.errors[0]), /^\/linux\/rootfsPropagation: /);
  // And the strict check, the one for what sysrunc writes, refuses the recursive forms.
  assert.equal(validateSpecDocument(load('cri-container-bidirectional.json')).ok, false);
});

test('the engine of each captured config is recognised, so its own default capabilities are the yardstick', () => {
  const idOf = (spec: Spec): string => path.basename(path.dirname(spec.mounts?.find((m) => m.destination === '/etc/hostname')?.source ?? '/x/none'));
  const expected: Record<string, string> = { cri: 'containerd-cri', docker: 'docker', podman: 'podman', runc: 'unknown' };
  for (const file of FILES) {
    const spec = load(file);
    assert.equal(engineOf(spec, idOf(spec)), expected[file.split(/[-.]/)[0] as string], file);
  }
});
