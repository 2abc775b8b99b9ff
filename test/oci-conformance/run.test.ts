// run: foreground, detached and --keep, with extra fds and forwarded signals; sysrunc's run
// answers exactly as runc's does on the same bundle, and leaves nothing behind once deleted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { comparableState, startFixture, type Fixture, type Outcome, type Runtime } from './fixture.ts';
import { managerRecords, mountsUnder, recordsOnceReleased, runDirEntries } from './helpers/host-state.ts';
import { startToFiles, waitFor, type Started } from './helpers/spawn.ts';
import { assertValidState } from '../helpers/schema.ts';
import { bins } from '../rig/paths.ts';
import { SYSRUNC } from '../helpers/manager.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('run');
});
after(async () => fx.dispose());

// Distinct ids: runc's default cgroup path is /<id>, shared by namesakes in different roots.
const cid = (rt: Runtime, name: string) => `${name}-${rt.name}`;
const binOf = (rt: Runtime) => (rt.name === 'runc' ? bins.runc : SYSRUNC);

/** A fresh bundle per runtime running `args`, and its path by runtime name. */
async function bundles(name: string, args: string[]): Promise<Record<Runtime['name'], string>> {
  return {
    runc: (await fx.bundle(`${name}-runc`, args)).bundle,
    sysrunc: (await fx.bundle(`${name}-sysrunc`, args)).bundle,
  };
}

async function both(step: (rt: Runtime) => Promise<Outcome>): Promise<{ runc: Outcome; sysrunc: Outcome }> {
  return { runc: await step(fx.runc), sysrunc: await step(fx.sysrunc) };
}

/** Starts `<runtime> --root R ...argv` with `fds` as its fds 3, 4, ... */
function start(rt: Runtime, argv: readonly string[], fds: readonly number[] = []): Started {
  return startToFiles(binOf(rt), ['--root', rt.root, ...argv], {
    env: { ...process.env, ...fx.manager.env },
    cwd: fx.work,
    dir: fx.work,
    extraFds: fds,
  });
}

/** A read-only fd on a fresh file holding `text`, for the caller to close. */
function fileFd(name: string, text: string): number {
  const file = path.join(fx.work, `input-${name}.txt`);
  writeFileSync(file, text);
  return openSync(file, 'r');
}

async function status(rt: Runtime, id: string): Promise<string | undefined> {
  const out = await rt.cli(['state', id]);
  return out.exitCode === 0 ? (JSON.parse(out.stdout) as { status: string }).status : undefined;
}

test('run in the foreground prints what the container prints and exits 0, like runc', async () => {
  const b = await bundles('fg0', ['sh', '-c', 'echo hello from run; echo second line']);
  const out = await both((rt) => rt.cli(['run', '--bundle', b[rt.name], cid(rt, 'fg0')]));
  assert.equal(out.runc.exitCode, 0, out.runc.stderr);
  assert.deepEqual(
    { exitCode: out.sysrunc.exitCode, stdout: out.sysrunc.stdout, stderr: out.sysrunc.stderr },
    { exitCode: out.runc.exitCode, stdout: out.runc.stdout, stderr: out.runc.stderr },
  );
});

test('run in the foreground returns the container exit code 7, like runc', async () => {
  const b = await bundles('fg7', ['sh', '-c', 'echo about to fail; exit 7']);
  const out = await both((rt) => rt.cli(['run', '--bundle', b[rt.name], cid(rt, 'fg7')]));
  assert.equal(out.runc.exitCode, 7);
  assert.deepEqual([out.sysrunc.exitCode, out.sysrunc.stdout], [out.runc.exitCode, out.runc.stdout]);
});

test('a foreground run leaves no container, manager record, mount or run dir behind', async () => {
  const b = await bundles('fgclean', ['true']);
  const original = readFileSync(path.join(b.sysrunc, 'config.json'), 'utf8');
  const out = await fx.sysrunc.cli(['run', '--bundle', b.sysrunc, cid(fx.sysrunc, 'fgclean')]);
  assert.equal(out.exitCode, 0, out.stderr);
  assert.equal(await status(fx.sysrunc, cid(fx.sysrunc, 'fgclean')), undefined);
  assert.deepEqual(await recordsOnceReleased(fx.manager), []);
  assert.deepEqual(mountsUnder(fx.manager.runDir), []);
  assert.deepEqual(runDirEntries(fx.manager), []);
  assert.equal(readFileSync(path.join(b.sysrunc, 'config.json'), 'utf8'), original);
  assert.equal(existsSync(path.join(b.sysrunc, 'config.json.sysrunc-orig')), false);
});

let detached: Record<Runtime['name'], string>;

test('run -d returns at once with the container running, and the same state document as runc', async () => {
  detached = await bundles('detached', ['sleep', '1000']);
  const out = await both((rt) => rt.cli(['run', '-d', '--bundle', detached[rt.name], cid(rt, 'detached')]));
  assert.equal(out.runc.exitCode, 0, out.runc.stderr);
  assert.equal(out.sysrunc.exitCode, 0, out.sysrunc.stderr);
  const state = await both((rt) => rt.cli(['state', cid(rt, 'detached')]));
  const doc = JSON.parse(state.sysrunc.stdout) as { status: string };
  assertValidState(doc);
  assert.equal(doc.status, 'running');
  assert.deepEqual(comparableState(state.sysrunc.stdout), comparableState(state.runc.stdout));
});

test('run -d keeps a manager record for the container until it is deleted', async () => {
  const records = await managerRecords(fx.manager);
  assert.deepEqual(
    records.map((r) => [r.id, r.runtimeRoot, r.bundle]),
    [[cid(fx.sysrunc, 'detached'), fx.sysrunc.root, detached.sysrunc]],
  );
});

test('delete --force of a running detached container: no manager record, mount or run dir; the bundle was never written to', async () => {
  const out = await both((rt) => rt.cli(['delete', '--force', cid(rt, 'detached')]));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode, out.sysrunc.stderr);
  assert.equal(out.sysrunc.exitCode, 0);
  assert.equal(await status(fx.sysrunc, cid(fx.sysrunc, 'detached')), undefined);
  assert.deepEqual(await recordsOnceReleased(fx.manager), []);
  assert.deepEqual(mountsUnder(fx.manager.runDir), []);
  assert.deepEqual(runDirEntries(fx.manager), []);
  assert.deepEqual(readFileSync(path.join(detached.sysrunc, 'config.json')), readFileSync(path.join(detached.runc, 'config.json')));
  assert.deepEqual(readdirSync(detached.sysrunc).sort(), readdirSync(detached.runc).sort());
});

test('run --preserve-fds 1: the container reads the caller fd 3, like with runc', async () => {
  const b = await bundles('preserve', ['sh', '-c', 'cat <&3']);
  const out = await both(async (rt) => {
    const fd = fileFd(`fd3-${rt.name}`, 'passed on fd 3\n');
    try {
      return await start(rt, ['run', '--preserve-fds', '1', '--bundle', b[rt.name], cid(rt, 'preserve')], [fd]).outcome;
    } finally {
      closeSync(fd);
    }
  });
  assert.deepEqual([out.runc.exitCode, out.runc.stdout], [0, 'passed on fd 3\n'], out.runc.stderr);
  assert.deepEqual([out.sysrunc.exitCode, out.sysrunc.stdout, out.sysrunc.stderr], [out.runc.exitCode, out.runc.stdout, out.runc.stderr]);
});

test('run -d --preserve-fds 1: the detached container reads the caller fd 3, like with runc', async () => {
  const b = await bundles('preserve-d', ['sh', '-c', 'cat <&3 >/tmp/got; sleep 1000']);
  await both(async (rt) => {
    const fd = fileFd(`fd3d-${rt.name}`, 'passed on fd 3 to a detached run\n');
    try {
      const out = await start(rt, ['run', '-d', '--preserve-fds', '1', '--bundle', b[rt.name], cid(rt, 'preserve-d')], [fd]).outcome;
      assert.equal(out.exitCode, 0, `${rt.name}: ${out.stderr}`);
      return out;
    } finally {
      closeSync(fd);
    }
  });
  const got = await both((rt) =>
    waitFor(`${rt.name} container to copy fd 3`, async () => {
      const out = await rt.cli(['exec', cid(rt, 'preserve-d'), 'cat', '/tmp/got']);
      return out.stdout === '' ? undefined : out;
    }),
  );
  assert.equal(got.runc.stdout, 'passed on fd 3 to a detached run\n');
  assert.equal(got.sysrunc.stdout, got.runc.stdout);
  await both((rt) => rt.cli(['delete', '--force', cid(rt, 'preserve-d')]));
});

test('run with LISTEN_FDS=1 and LISTEN_PID of the runtime: the container gets the socket-activation fd 3, like with runc', async () => {
  const b = await bundles('listen', ['sh', '-c', 'echo "LISTEN_FDS=$LISTEN_FDS"; cat <&3']);
  const out = await both(async (rt) => {
    const fd = fileFd(`listen-${rt.name}`, 'socket activation fd\n');
    try {
      // LISTEN_PID must name the runtime process itself (systemd's rule): a shell sets it and execs.
      const shell = startToFiles(
        '/bin/sh',
        ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', binOf(rt), '--root', rt.root, 'run', '--bundle', b[rt.name], cid(rt, 'listen')],
        { env: { ...process.env, ...fx.manager.env }, cwd: fx.work, dir: fx.work, extraFds: [fd] },
      );
      return await shell.outcome;
    } finally {
      closeSync(fd);
    }
  });
  assert.deepEqual([out.runc.exitCode, out.runc.stdout], [0, 'LISTEN_FDS=1\nsocket activation fd\n'], out.runc.stderr);
  assert.deepEqual([out.sysrunc.exitCode, out.sysrunc.stdout, out.sysrunc.stderr], [out.runc.exitCode, out.runc.stdout, out.runc.stderr]);
});

test('SIGTERM sent to a foreground run reaches the container, which exits 9 from its trap, like with runc', async () => {
  const b = await bundles('sigterm', ['sh', '-c', 'trap "exit 9" TERM; sleep 100 & wait']);
  const out = await both(async (rt) => {
    const id = cid(rt, 'sigterm');
    const running = start(rt, ['run', '--bundle', b[rt.name], id]);
    // The trap is set before sleep starts: two processes in the container mean it is in place.
    await waitFor(`${rt.name} container with its trap set`, async () => {
      const ps = await rt.cli(['ps', '--format', 'json', id]);
      return ps.exitCode === 0 && (JSON.parse(ps.stdout) as number[]).length >= 2 ? true : undefined;
    });
    process.kill(running.pid, 'SIGTERM');
    return running.outcome;
  });
  assert.equal(out.runc.exitCode, 9, out.runc.stderr);
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode, out.sysrunc.stderr);
});

let kept: Record<Runtime['name'], string>;

test('run --keep returns the exit code and leaves the container stopped, like runc', async () => {
  kept = await bundles('keep', ['sh', '-c', 'echo kept; exit 3']);
  const out = await both((rt) => rt.cli(['run', '--keep', '--bundle', kept[rt.name], cid(rt, 'keep')]));
  assert.equal(out.runc.exitCode, 3, out.runc.stderr);
  assert.deepEqual([out.sysrunc.exitCode, out.sysrunc.stdout], [out.runc.exitCode, out.runc.stdout]);
  const state = await both((rt) => rt.cli(['state', cid(rt, 'keep')]));
  assert.equal(JSON.parse(state.sysrunc.stdout).status, 'stopped');
  assert.deepEqual(comparableState(state.sysrunc.stdout), comparableState(state.runc.stdout));
});

test('delete after run --keep removes the container, its manager record, mounts and run dir; the bundle was never written to', async () => {
  const out = await both((rt) => rt.cli(['delete', cid(rt, 'keep')]));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode, out.sysrunc.stderr);
  assert.equal(out.sysrunc.exitCode, 0);
  assert.equal(await status(fx.sysrunc, cid(fx.sysrunc, 'keep')), undefined);
  assert.deepEqual(await recordsOnceReleased(fx.manager), []);
  assert.deepEqual(mountsUnder(fx.manager.runDir), []);
  assert.deepEqual(runDirEntries(fx.manager), []);
  assert.deepEqual(readFileSync(path.join(kept.sysrunc, 'config.json')), readFileSync(path.join(kept.runc, 'config.json')));
  assert.deepEqual(readdirSync(kept.sysrunc).sort(), readdirSync(kept.runc).sort());
});
