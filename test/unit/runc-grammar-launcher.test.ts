// bin/sysrunc's flag tables (case patterns in POSIX sh) are exactly runc's grammar as
// src/oci/runc-grammar.ts defines it: a flag added to the grammar and not to the launcher fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CREATE_FLAGS, EXEC_FLAGS, flagNamed, GLOBAL_FLAGS, RUN_FLAGS, spellings, TRUE_WORDS, valueFlagSpellings,
} from '../../src/oci/runc-grammar.ts';
import { armsListing, launcherCaseArms } from '../helpers/launcher-case-arms.ts';

const arms = launcherCaseArms();
const sorted = (list: readonly string[]): string[] => [...new Set(list)].sort();
const withValue = (list: readonly string[]): string[] => list.map((spelling) => `${spelling}=*`);

test('every launcher arm of global value flags lists exactly runc global flags that take a value', () => {
  const globalArms = [...armsListing(arms, '--root'), ...armsListing(arms, '--root', 'global')];
  // The subcommand search, the removal of sysrunc's flags, container_id and the create/run argv rebuild.
  assert.equal(globalArms.length, 4);
  for (const arm of globalArms) assert.deepEqual(sorted(arm), sorted(valueFlagSpellings(GLOBAL_FLAGS)));
});

test("the launcher's exec value flags are exactly runc exec's", () => {
  const execArms = armsListing(arms, '--cwd');
  assert.equal(execArms.length, 1);
  assert.deepEqual(sorted(execArms[0] as string[]), sorted(valueFlagSpellings(EXEC_FLAGS)));
});

test("the launcher's exec --process arm lists every spelling of runc exec's --process", () => {
  const process = spellings(flagNamed(EXEC_FLAGS, 'process'));
  assert.deepEqual(sorted(armsListing(arms, '--process=*')[0] ?? []), sorted([...process, ...withValue(process)]));
});

test("the value flags the create/run argv rebuild steps over are exactly runc create's", () => {
  const rebuildArms = ['--bundle', '--console-socket', '--pid-file']
    .flatMap((flag) => armsListing(arms, flag))
    .filter((arm) => !arm.includes('--cwd'));
  assert.deepEqual(sorted(rebuildArms.flat()), sorted(valueFlagSpellings(CREATE_FLAGS)));
});

test('the create/run argv rebuild recognises every --flag=value spelling of --bundle and --console-socket', () => {
  for (const name of ['bundle', 'console-socket']) {
    const flag = spellings(flagNamed(CREATE_FLAGS, name));
    assert.deepEqual(sorted(armsListing(arms, `--${name}=*`)[0] ?? []), sorted(withValue(flag)), name);
  }
});

test("the launcher's detach and keep arms are every spelling of runc run's --detach and --keep", () => {
  const flags = [...spellings(flagNamed(RUN_FLAGS, 'detach')), ...spellings(flagNamed(RUN_FLAGS, 'keep'))];
  assert.deepEqual(sorted(armsListing(arms, '--detach')[0] ?? []), sorted(flags));
  assert.deepEqual(sorted(armsListing(arms, '--detach=*')[0] ?? []), sorted(withValue(flags)));
});

test("the launcher's help and version arms are every spelling of runc's --help and --version", () => {
  for (const name of ['help', 'version']) {
    const flag = spellings(flagNamed(GLOBAL_FLAGS, name));
    const bare = armsListing(arms, `--${name}`).filter((arm) => arm.every((pattern) => pattern.startsWith('-')));
    assert.deepEqual(sorted(bare[0] ?? []), sorted(flag), name);
    assert.deepEqual(sorted(armsListing(arms, `--${name}=*`)[0] ?? []), sorted(withValue(flag)), name);
  }
});

test("every launcher arm of boolean words lists exactly the words Go's ParseBool reads as true", () => {
  const wordArms = armsListing(arms, 'TRUE');
  assert.equal(wordArms.length, 3);
  for (const arm of wordArms) assert.deepEqual(sorted(arm), sorted(TRUE_WORDS));
});
