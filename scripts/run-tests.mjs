// Builds dist/, then runs test suites with node's test runner: `node scripts/run-tests.mjs [unit|conformance|e2e|rig|all]...`.
// Suites run one after another (the end-to-end ones share the machine's mounts and cgroups); files
// within the unit suite run in parallel.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const SUITES = {
  unit: { dir: 'test/unit', concurrency: 2 },
  conformance: { dir: 'test/oci-conformance', concurrency: 1 },
  rig: { dir: 'test/rig', concurrency: 1 },
  e2e: { dir: 'test/e2e', concurrency: 1 },
};

function testFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.test.ts')) out.push(path.relative(root, p));
    }
  };
  walk(path.join(root, dir));
  return out;
}

const requested = process.argv.slice(2);
const names = requested.length === 0 || requested.includes('all') ? Object.keys(SUITES) : requested;
const files = [];
let concurrency = 2;
for (const name of names) {
  const suite = SUITES[name];
  if (!suite) {
    console.error(`run-tests: unknown suite "${name}" (known: ${Object.keys(SUITES).join(', ')}, all)`);
    process.exit(2);
  }
  files.push(...testFiles(suite.dir));
  concurrency = Math.min(concurrency, suite.concurrency);
}
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
// The CLI, rig and end-to-end tests run bin/sysrunc -> dist/: build it first, so a stale build
// cannot pass for the sources under test.
const build = spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('run-tests: the build failed; not running tests against a stale dist/');
  process.exit(build.status ?? 1);
}
// A per-test bound, so a test waiting for something that never comes fails instead of hanging CI.
const TEST_TIMEOUT_MS = 15 * 60_000;
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
