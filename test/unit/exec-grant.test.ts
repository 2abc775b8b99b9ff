// sysrunc-exec-grant (src/runtime-call/native/exec-grant.c), the C fast path of exec's capability grant, writes
// what the per-call binary's grant (systemProcess) would: the same JSON, member for member. A file
// it does not take as certain it leaves as it was, with a non-zero status (bin/sysrunc then asks
// the per-call binary).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemProcess } from '../../src/spec-transform/system-capabilities.ts';
import { boundingSetOf } from '../../src/host/bounding-set.ts';
import type { Process } from '../../src/oci/spec.ts';
import { CAPABILITY_NAMES_HEADER, capabilityNamesHeader } from '../../src/runtime-call/native/capability-names-header.ts';

// The grant (exec-grant.c, shared with the C launcher) and the program around it.
const SOURCES = ['exec-grant-main.c', 'exec-grant.c'].map((file) => fileURLToPath(new URL(`../../src/runtime-call/native/${file}`, import.meta.url)));
const dir = mkdtempSync('/tmp/sysrunc-exec-grant-');
const binary = path.join(dir, 'sysrunc-exec-grant');
// Its capability table, generated from src/oci/capabilities.ts as scripts/build.mjs generates it.
writeFileSync(path.join(dir, CAPABILITY_NAMES_HEADER), capabilityNamesHeader());
const built = spawnSync(process.env.CC ?? 'cc', ['-static', '-Os', '-Wall', '-Wextra', '-Werror', '-I', dir, '-o', binary, ...SOURCES], { encoding: 'utf8' });
assert.equal(built.status, 0, `cc: ${built.stderr}`);

let files = 0;
function grant(text: string): { status: number | null; text: string } {
  const file = path.join(dir, `process-${files++}.json`);
  writeFileSync(file, text);
  const r = spawnSync(binary, [file], { encoding: 'utf8', env: { SYSRUNC_CALLER_PID: String(process.pid) } });
  return { status: r.status, text: readFileSync(file, 'utf8') };
}

const containerdExec = {
  terminal: false,
  user: { uid: 0, gid: 0, additionalGids: [10] },
  args: ['sh', '-c', 'echo "}{"'],
  env: ['PATH=/usr/bin:/bin', 'X=a\\"b'],
  cwd: '/',
  capabilities: {
    bounding: ['CAP_CHOWN', 'CAP_KILL'],
    effective: ['CAP_CHOWN'],
    inheritable: ['CAP_KILL'],
    permitted: ['CAP_CHOWN'],
    ambient: ['CAP_CHOWN'],
  },
  noNewPrivileges: false,
  oomScoreAdj: -500,
  rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1.5e3, soft: 1024 }],
};

const CORPUS: Record<string, unknown> = {
  'a root process with every member containerd writes': containerdExec,
  'a non-root process (bounding only)': { ...containerdExec, user: { uid: 1000, gid: 1000 } },
  'a process with no user (root)': { args: ['true'], cwd: '/', capabilities: { bounding: [] } },
  'a process with no capabilities member': { args: ['true'], cwd: '/', user: { uid: 5 } },
  'an empty process': {},
  'an empty capabilities object': { user: { uid: 0 }, capabilities: {} },
};

for (const [name, doc] of Object.entries(CORPUS)) {
  test(`the C grant writes what the per-call binary's grant does: ${name}`, () => {
    for (const text of [JSON.stringify(doc), JSON.stringify(doc, null, '\t')]) {
      const out = grant(text);
      assert.equal(out.status, 0);
      assert.deepEqual(JSON.parse(out.text), systemProcess(doc as Process, boundingSetOf(process.pid)));
    }
  });
}

test('the C grant keeps every byte outside the capabilities member', () => {
  const text = '{"args":["a"],  "x": 1.50e+3,\n "capabilities": {"ambient":["CAP_KILL"]} , "z":"\\u00e9"}';
  const out = grant(text);
  assert.equal(out.status, 0);
  assert.ok(out.text.startsWith('{"args":["a"],  "x": 1.50e+3,\n "capabilities": {"ambient":["CAP_KILL"],"bounding":['));
  assert.ok(out.text.endsWith(']} , "z":"\\u00e9"}'));
});

const REFUSED: Record<string, string> = {
  'not JSON': '{"args": [tru]}',
  'a top level that is not an object': '["capabilities"]',
  'text after the object': '{"args":[]} {}',
  'an escaped key (it may spell capabilities)': '{"c\\u0061pabilities":{}}',
  'a duplicate capabilities member': '{"capabilities":{},"capabilities":{}}',
  'a duplicate user member': '{"user":{"uid":0},"user":{"uid":1}}',
  'a uid that is not a plain number': '{"user":{"uid":"0"}}',
  'a capabilities member that is not an object': '{"capabilities":null}',
  'a truncated file': '{"capabilities":{"bounding":["CAP_CHOWN"',
};

for (const [name, text] of Object.entries(REFUSED)) {
  test(`the C grant leaves a file alone and says so (non-zero status): ${name}`, () => {
    const out = grant(text);
    assert.notEqual(out.status, 0);
    assert.equal(out.text, text);
  });
}

test('the C grant leaves a missing file missing and says so', () => {
  const r = spawnSync(binary, [path.join(dir, 'absent.json')]);
  assert.notEqual(r.status, 0);
});

test('a capability list the C grant\'s 64-bit mask cannot hold makes no header', () => {
  const names = Array.from({ length: 65 }, (_, bit) => `CAP_BIT_${bit}`);
  assert.throws(() => capabilityNamesHeader(names), /65 capability names: the C grant's mask holds 64/);
});
