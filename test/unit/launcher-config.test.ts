// Both launchers (bin/sysrunc, dist/sysrunc) read /etc/sysrunc/config.json ($SYSRUNC_CONFIG) exactly as the per-call binary
// does (src/config/sysrunc-config.ts is the oracle here): for each file below, the runtime it execs
// is the configured one, and it finds the manager's hints beside the configured socket. Observed
// through `exec --process`: the hint asks for the capability grant, which rewrites the process
// file, and the runtime (a script) prints that it ran. Needs dist/ (node scripts/build.mjs).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSysruncConfig } from '../../src/config/sysrunc-config.ts';
import { LAUNCHERS } from '../helpers/launchers.ts';

const ID = 'launcher-config-probe';
let work: string;
/** A directory whose name holds JSON's structural characters. */
let odd: string;
let runtime: string;
let socket: string;

before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'sysrunc-launcher-config-'));
  odd = path.join(work, 'a dir, with {json}: "marks"'.replace(/"/g, ''));
  mkdirSync(odd);
  runtime = path.join(odd, 'runtime');
  writeFileSync(runtime, '#!/bin/sh\necho "configured runtime ran: $1"\n');
  chmodSync(runtime, 0o755);
  socket = path.join(odd, 'mgr.sock');
  mkdirSync(path.join(odd, 'hints'));
  writeFileSync(path.join(odd, 'hints', ID), `${JSON.stringify({ delete: 'async', exec: 'grant-capabilities' })}\n`);
});

after(() => rmSync(work, { recursive: true, force: true }));

/** JSON string literals of the runtime and socket paths, with every `/` escaped. */
const escaped = (value: string): string => JSON.stringify(value).replace(/\//g, '\\/');
/** `r` first, with a `\u0072` for one of its characters. */
const unicodeEscaped = (value: string): string => JSON.stringify(value).replace('r', '\\u0072');

interface Case {
  readonly name: string;
  readonly text: () => string;
  readonly env?: Readonly<Record<string, string>>;
}

const CASES: readonly Case[] = [
  { name: 'one line, as JSON.stringify writes it', text: () => JSON.stringify({ runtime, managerSocket: socket }) },
  { name: 'pretty-printed', text: () => `${JSON.stringify({ runtime, managerSocket: socket }, null, 2)}\n` },
  { name: 'keys in the other order, tabs, no final newline', text: () => `{\t"managerSocket"\t:\t${JSON.stringify(socket)},\n\t"runtime": ${JSON.stringify(runtime)}}` },
  { name: 'CRLF line ends', text: () => `{\r\n  "runtime": ${JSON.stringify(runtime)},\r\n  "managerSocket": ${JSON.stringify(socket)}\r\n}\r\n` },
  { name: 'escaped slashes', text: () => `{"runtime":${escaped(runtime)},"managerSocket":${escaped(socket)}}` },
  { name: 'a \\u escape', text: () => `{"runtime":${unicodeEscaped(runtime)},"managerSocket":${unicodeEscaped(socket)}}` },
  { name: 'a key given twice: the last one counts', text: () => `{"runtime":"/nonexistent/runc","managerSocket":${JSON.stringify(socket)},"runtime":${JSON.stringify(runtime)}}` },
  { name: 'the socket from the file, the runtime from $SYSRUNC_RUNTIME', text: () => JSON.stringify({ managerSocket: socket }), env: { SYSRUNC_RUNTIME: '' } },
  { name: 'an unknown key is an error', text: () => JSON.stringify({ runtime, managerSocket: socket, socket }) },
  { name: 'an empty value is an error', text: () => JSON.stringify({ runtime, managerSocket: '' }) },
  { name: 'a trailing comma is an error', text: () => `{"runtime":${JSON.stringify(runtime)},"managerSocket":${JSON.stringify(socket)},}` },
  { name: 'a number is an error', text: () => `{"runtime":${JSON.stringify(runtime)},"managerSocket":1}` },
  { name: 'a nested object is an error', text: () => `{"runtime":${JSON.stringify(runtime)},"managerSocket":{"path":${JSON.stringify(socket)}}}` },
];

for (const launcher of LAUNCHERS) for (const c of CASES) {
  test(`config file ${c.name}: ${launcher.name} uses what the per-call binary reads`, () => {
    const config = path.join(work, 'config.json');
    writeFileSync(config, c.text());
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, SYSRUNC_CONFIG: config, ...c.env };
    if (env.SYSRUNC_RUNTIME === '') env.SYSRUNC_RUNTIME = runtime;
    let expected: { runtime: string; managerSocket: string } | { error: string };
    try {
      expected = loadSysruncConfig(env);
    } catch (err) {
      expected = { error: (err as Error).message };
    }
    const processFile = path.join(work, 'process.json');
    const asWritten = `${JSON.stringify({ args: ['true'], cwd: '/', user: { uid: 0, gid: 0 } })}\n`;
    writeFileSync(processFile, asWritten);
    const r = spawnSync(launcher.path, ['exec', '--process', processFile, ID], { env, encoding: 'utf8' });
    if ('error' in expected) {
      assert.notEqual(r.status, 0, r.stdout);
      // The JSON parser's own wording differs between Node (here) and Bun (the compiled binary).
      const parserNeutral = (message: string): string => message.replace(/invalid JSON: .*/, 'invalid JSON: …');
      assert.equal(parserNeutral(r.stderr), parserNeutral(`sysrunc: ${expected.error}\n`));
      assert.equal(readFileSync(processFile, 'utf8'), asWritten, 'the process file is untouched');
      return;
    }
    assert.deepEqual(expected, { runtime, managerSocket: socket, configPath: config }, 'the case configures both values');
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'configured runtime ran: exec\n');
    const granted = JSON.parse(readFileSync(processFile, 'utf8')) as { capabilities?: { bounding?: unknown[] } };
    assert.ok((granted.capabilities?.bounding?.length ?? 0) > 0, 'the hint beside the configured socket was read: capabilities granted');
  });
}
