// The manager's answer to the synchronous delete's C client (manager/delete-call.ts): argv parsed
// with src/oci as the per-call binary parses it, the release done only once runc no longer has
// the container, a failed release a warning in the call's log format, and runc's status the exit.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Params } from '../../src/manager-api/v1.ts';
import { answerDeleteCall, deleteCallContainerId, type DeleteCallHost } from '../../src/manager/delete-call.ts';
import { ServiceError } from '../../src/manager/service-error.ts';

const dir = mkdtempSync('/tmp/sysrunc-delete-call-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A manager that records the releases asked of it and answers with `outcome`. */
function host(outcome: () => Promise<void> = () => Promise.resolve()) {
  const released: Params<'release'>[] = [];
  const unexpected: unknown[] = [];
  const h: DeleteCallHost = {
    release: async (p) => {
      released.push(p);
      await outcome();
      return { found: true };
    },
    unexpected: (err) => unexpected.push(err),
  };
  return { h, released, unexpected };
}

const call = (argv: string[], runcStatus = 0, cwd = dir): Params<'deleteCall'> => ({ argv, cwd, runcStatus });
const untimed = (text: string) => text.replace(/"?time"?[=:]"[^"]*"/g, 'time=<time>');

test('a delete runc carried out: the container is released under the call\'s --root, resolved against its cwd, and runc\'s status is the exit', async () => {
  const m = host();
  const answer = await answerDeleteCall(m.h, call(['--root', 'state', 'delete', '--force', 'box-1'], 0, '/run/caller'));
  assert.deepEqual(answer, { exitCode: 0, writes: [] });
  assert.deepEqual(m.released, [{ id: 'box-1', runtimeRoot: '/run/caller/state' }]);
});

test('without --root, the release is under runc\'s default root', async () => {
  const m = host();
  await answerDeleteCall(m.h, call(['delete', 'box-2']));
  assert.deepEqual(m.released, [{ id: 'box-2', runtimeRoot: '/run/runc' }]);
});

test('a delete runc refused while it still has the container releases nothing and exits with runc\'s status, silent', async () => {
  const root = path.join(dir, 'root-refused');
  mkdirSync(path.join(root, 'still-here'), { recursive: true });
  writeFileSync(path.join(root, 'still-here', 'state.json'), '{}');
  const m = host();
  const answer = await answerDeleteCall(m.h, call(['--root', root, 'delete', 'still-here'], 1));
  assert.deepEqual(answer, { exitCode: 1, writes: [] });
  assert.deepEqual(m.released, []);
});

test('a delete runc failed for a container it no longer has still releases it (runc\'s status stands)', async () => {
  const m = host();
  const answer = await answerDeleteCall(m.h, call(['--root', path.join(dir, 'root-gone'), 'delete', 'gone'], 1));
  assert.deepEqual(answer, { exitCode: 1, writes: [] });
  assert.equal(m.released.length, 1);
});

test('a release the manager refuses is a warning on stderr and, with --log, in the log as json', async () => {
  const m = host(() => Promise.reject(new ServiceError('conflict', 'release box-3: runc still has the container in /run/x; delete it with runc first')));
  const answer = await answerDeleteCall(m.h, call(['--log', 'calls.log', '--log-format', 'json', 'delete', 'box-3']));
  assert.equal(answer.exitCode, 0);
  const msg = 'delete box-3: release box-3: runc still has the container in /run/x; delete it with runc first';
  assert.equal(answer.writes.length, 2);
  assert.equal(answer.writes[0]?.file, 'calls.log');
  assert.deepEqual({ ...JSON.parse(answer.writes[0]?.text ?? '{}'), time: '' }, { level: 'warning', msg: `sysrunc: ${msg}`, time: '' });
  assert.deepEqual(answer.writes[1], { text: `sysrunc: warning: ${msg}\n` });
  assert.deepEqual(m.unexpected, []);
});

test('a release that fails unexpectedly is a warning worded as the socket words it, in the text log format, and is logged', async () => {
  const m = host(() => Promise.reject(new Error('disk on fire')));
  const answer = await answerDeleteCall(m.h, call(['--log', 'calls.log', 'delete', 'box-4'], 0));
  assert.equal(answer.exitCode, 0);
  assert.equal(untimed(answer.writes[0]?.text ?? ''), 'time=<time> level=warning msg="sysrunc: delete box-4: release: disk on fire"\n');
  assert.deepEqual(answer.writes[1], { text: 'sysrunc: warning: delete box-4: release: disk on fire\n' });
  assert.equal(m.unexpected.length, 1);
});

for (const [what, argv, runcStatus, expected] of [
  ['an unknown delete flag, json log', ['--log', 'bad.log', '--log-format', 'json', 'delete', '--bogus', 'x'], 1, 'json'],
  ['a missing container id, text log', ['--log', 'bad.log', 'delete'], 1, 'text'],
  ['an unknown log format', ['--log-format', 'yaml', 'delete', 'x'], 0, 'none'],
  ['a call that is not delete', ['--log', 'bad.log', 'state', 'x'], 0, 'text'],
] as const) {
  test(`${what}: runc's status, a one-line error in the call's log format, and no release`, async () => {
    const m = host();
    const answer = await answerDeleteCall(m.h, call([...argv], runcStatus));
    assert.equal(answer.exitCode, runcStatus);
    assert.deepEqual(m.released, []);
    const stderr = answer.writes.filter((w) => w.file === undefined);
    assert.equal(stderr.length, 1);
    assert.match(stderr[0]?.text ?? '', /^sysrunc: [^\n]+\n$/);
    const logged = answer.writes.filter((w) => w.file !== undefined);
    if (expected === 'none') return assert.deepEqual(logged, []);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.file, 'bad.log');
    if (expected === 'json') assert.equal((JSON.parse(logged[0]?.text ?? '') as { level: string }).level, 'error');
    else assert.match(logged[0]?.text ?? '', /^time="[^"]+" level=error msg="sysrunc: /);
  });
}

test('an invalid container id: the one-line error runc\'s grammar gives, and no release', async () => {
  const m = host();
  const answer = await answerDeleteCall(m.h, call(['delete', '../escape']));
  assert.deepEqual(answer, { exitCode: 0, writes: [{ text: 'sysrunc: invalid container id format: ../escape\n' }] });
  assert.deepEqual(m.released, []);
});

test('a release the API would refuse (a --root past its length bound) is not made: a warning worded as the socket refuses it', async () => {
  const m = host();
  const answer = await answerDeleteCall(m.h, call(['--root', `/${'r'.repeat(5000)}`, 'delete', 'box-6']));
  assert.deepEqual(m.released, []);
  assert.equal(answer.exitCode, 0);
  assert.match(answer.writes.at(-1)?.text ?? '', /^sysrunc: warning: delete box-6: release: \/runtimeRoot: [^\n]+\n$/);
});

test('the container whose release under way the call waits for is the one its argv names', () => {
  assert.equal(deleteCallContainerId(call(['--root', '/r', 'delete', '-f', 'box-5'])), 'box-5');
  assert.equal(deleteCallContainerId(call(['delete', '--bogus', 'box-5'])), undefined);
});

test('a call whose command is not delete is refused in one line naming the command, and nothing is released', async () => {
  const m = host();
  const answer = await answerDeleteCall(m.h, call(['start', 'box-7'], 0));
  assert.deepEqual(m.released, []);
  assert.deepEqual(answer, { exitCode: 0, writes: [{ text: 'sysrunc: deleteCall: the call is "start", not delete\n' }] });
});
