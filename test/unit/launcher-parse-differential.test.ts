// The C launcher (dist/sysrunc) reads any command line exactly as bin/sysrunc does: over random
// argv built from runc's grammar (every spelling of its global and exec flags, with and without
// `=value`, `--`, `-`, sysrunc's own flags, subcommands, odd words), the SYSRUNC_PARSE_ONLY output
// (subcommand, sysrunc's flags, the argv runc gets, delete's and exec's id and --process file) and
// exit status of both are the same, byte for byte. A fresh seed each run (FUZZ_SEED replays one;
// fast-check prints it on failure); FUZZ_RUNS runs (default 200). Needs dist/ (node scripts/build.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { runcGrammarTables } from '../../src/runtime-call/native/runc-grammar-header.ts';
import { RUNC_COMMANDS } from '../../src/oci/runc-grammar.ts';
import { C_LAUNCHER, SCRIPT_LAUNCHER } from '../helpers/launchers.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

const { RUNC_TRUE_WORDS: trueWords = [], ...flagTables } = runcGrammarTables();
const flags = Object.values(flagTables).flat();
const boolWords = [...trueWords, '0', 'false', 'yes', ''];
const ownFlags = ['--sysrunc-userns-size=65536', '-sysrunc-x', '--sysrunc-', '-sysrunc-ownership=clone'];
const word = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...flags) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...flags), fc.constantFrom(...boolWords, '/x', 'a=b')).map(([flag, value]) => `${flag}=${value}`) },
  { weight: 4, arbitrary: fc.constantFrom(...RUNC_COMMANDS, 'features', 'nope') },
  { weight: 3, arbitrary: fc.constantFrom('--', '-', '', ...ownFlags, '--debug', '--bundle', '-d', '--force') },
  { weight: 3, arbitrary: fc.constantFrom('c1', 'ctr-ü', '/run/p.json', 'a b', 'x\ny', '.', '..', 'a/b') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }).filter((text) => !text.includes('\0')) },
);
/** A flag and the argument after it: a value flag's value, or a word read as a flag where it is none. */
const flagThenWord = fc.tuple(fc.constantFrom(...flags), fc.constantFrom('/r', 'c1', '--', ...ownFlags, ...flags));
const argvs = fc.array(fc.oneof({ weight: 4, arbitrary: word.map((one) => [one]) }, { weight: 1, arbitrary: flagThenWord }), { maxLength: 8 }).map((parts) => parts.flat());

function parseOnly(launcher: string, argv: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(launcher, argv, {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, SYSRUNC_PARSE_ONLY: '1', SYSRUNC_RUNTIME: '/bin/true', SYSRUNC_MGR_SOCKET: '/nonexistent/mgr.sock' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('over random argv, dist/sysrunc prints and exits as bin/sysrunc does with SYSRUNC_PARSE_ONLY', () => {
  fc.assert(
    fc.property(argvs, (argv) => {
      assert.deepEqual(parseOnly(C_LAUNCHER, argv), parseOnly(SCRIPT_LAUNCHER, argv));
    }),
    { seed: SEED, numRuns: RUNS },
  );
});
