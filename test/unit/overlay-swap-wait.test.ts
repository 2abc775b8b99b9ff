// An overlay swap over one upper dir mounts the incoming overlay only once the outgoing one is gone
// (manager/ownership/engine-overlay.ts): an unmount alone is not the end of an overlay while a
// process outside sysrunc still holds a file in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mountFs } from '../../src/host/fsmount.ts';
import { bindMount, unmount } from '../../src/host/mount.ts';
import { topOverlayAt } from '../../src/host/overlay-mountinfo.ts';
import { releaseEnginePath, replaceEngineOverlay, returnEngineOverlay, insideDir } from '../../src/manager/ownership/engine-overlay.ts';
import { withMountScratch } from '../fixtures/ownership/tree.ts';
import { mountOverlayIn, recordingSwap, type ScratchOverlay } from '../fixtures/overlay-in.ts';

const withWork = (fn: (work: string) => void): (() => void) => withMountScratch('swapwait', fn);

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A process that holds `file` open for `seconds`, then writes `marker` and exits; returned once the file is open. */
function holdOpen(file: string, seconds: number, marker: string): ChildProcess {
  const child = spawn('sh', ['-c', 'exec 3<"$1"; sleep "$2"; : > "$3"', 'sh', file, String(seconds), marker], { stdio: 'ignore' });
  // fd 3 of the child before its exec is libuv's own pipe: the file is open once fd 3 names it.
  waitUntil(() => fdTarget(`/proc/${child.pid}/fd/3`) === path.basename(file), 'the holder never opened the file');
  return child;
}

/** Kills the holder and waits until its files are closed (a zombie holds none). */
function letGo(child: ChildProcess): void {
  child.kill('SIGKILL');
  waitUntil(() => !existsSync(`/proc/${child.pid}/fd/3`), 'the holder kept its file');
}

function fdTarget(link: string): string | undefined {
  try {
    return path.basename(readlinkSync(link));
  } catch {
    return undefined;
  }
}

function waitUntil(ok: () => boolean, what: string): void {
  for (let i = 0; i < 1000 && !ok(); i++) sleepMs(5);
  assert.ok(ok(), what);
}

function engineRef(engine: ScratchOverlay): Parameters<typeof replaceEngineOverlay>[0] & object {
  return { mountpoint: engine.merged, lowerdirs: engine.lowers, upperdir: engine.upper, workdir: engine.work, options: {} };
}

test('sysrunc\'s overlay is mounted only once a process holding a file in the engine\'s overlay has let go of it', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  writeFileSync(path.join(engine.merged, 'held'), 'x');
  const marker = path.join(work, 'let-go');
  const holder = holdOpen(path.join(engine.merged, 'held'), 0.3, marker);
  const ours = path.join(work, 'ours');
  mkdirSync(ours);
  const swap = recordingSwap();
  const letGoBeforeMount: boolean[] = [];
  replaceEngineOverlay(engineRef(engine), ours, () => {
    letGoBeforeMount.push(existsSync(marker));
    mountFs('tmpfs', [], ours);
  }, swap);
  letGo(holder);
  assert.deepEqual(letGoBeforeMount, [true], 'mounted while the engine\'s overlay was still held');
  assert.deepEqual(swap.reports.map((r) => [r.mountpoint, r.outgoing, r.gone]), [[engine.merged, 'engine', true]]);
}));

test('an engine\'s overlay held beyond the wait is reported, and sysrunc\'s is mounted anyway', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  writeFileSync(path.join(engine.merged, 'held'), 'x');
  const holder = holdOpen(path.join(engine.merged, 'held'), 30, path.join(work, 'let-go'));
  try {
    const ours = path.join(work, 'ours');
    mkdirSync(ours);
    const swap = recordingSwap(100);
    let mounted = false;
    replaceEngineOverlay(engineRef(engine), ours, () => {
      mountFs('tmpfs', [], ours);
      mounted = true;
    }, swap);
    assert.equal(mounted, true);
    assert.deepEqual(swap.reports.map((r) => [r.mountpoint, r.outgoing, r.gone]), [[engine.merged, 'engine', false]]);
  } finally {
    letGo(holder);
  }
}));

test('an engine\'s overlay nothing else holds is replaced without waiting or reporting', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  const ours = path.join(work, 'ours');
  mkdirSync(ours);
  const swap = recordingSwap();
  replaceEngineOverlay(engineRef(engine), ours, () => mountFs('tmpfs', [], ours), swap);
  assert.deepEqual(swap.reports, []);
}));

test('at delete, the engine\'s overlay is mounted again only once a process holding a file in sysrunc\'s has let go of it', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  unmount(engine.merged, { detach: true });
  // sysrunc's overlay at the engine's path, as a create leaves it: a bind of the one in the run dir.
  const run = path.join(work, 'run');
  const ours = mountOverlayIn(run);
  bindMount(ours.merged, engine.merged, { recursive: false });
  writeFileSync(path.join(engine.merged, 'held'), 'x');
  const marker = path.join(work, 'let-go');
  const holder = holdOpen(path.join(engine.merged, 'held'), 0.3, marker);
  const swap = recordingSwap();
  const back = releaseEnginePath(engine.merged, (m) => insideDir(run, m.upperdir), swap);
  assert.ok(back.released && back.ours !== undefined, 'sysrunc\'s overlay was not released');
  const letGoBefore: boolean[] = [];
  try {
    unmount(ours.merged, { detach: true });
    returnEngineOverlay(engineRef(engine), back.ours, swap, () => letGoBefore.push(existsSync(marker)));
  } finally {
    back.ours.close();
    letGo(holder);
  }
  assert.deepEqual(letGoBefore, [true], 'the engine\'s overlay came back while sysrunc\'s was still held');
  assert.deepEqual(swap.reports.map((r) => [r.outgoing, r.gone]), [['sysrunc', true]]);
  assert.equal(topOverlayAt(engine.merged).upperdir, engine.upper);
}));

test('with no inotify watch to be had, a swap and its way back go on without waiting, each saying why', () => {
  // A user namespace of its own, whose inotify watch limit the child sets to 0.
  const fixture = path.join(import.meta.dirname, '../fixtures/swap-without-watch.ts');
  const scratch = path.join('/tmp', `sysrunc-swap-nowatch-${process.pid}`);
  const child = spawnSync('unshare', ['-Urm', process.execPath, '--import', 'tsx', fixture, scratch], { encoding: 'utf8' });
  rmSync(scratch, { recursive: true, force: true }); // its tmpfs went with the child's mount namespace
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout) as { told: string[]; atCreate: string; released: boolean; atDelete: string; run: string; engineUpper: string };
  assert.ok(insideDir(out.run, out.atCreate), `sysrunc's overlay is not at the engine's path: ${out.atCreate}`);
  assert.equal(out.released, true);
  assert.equal(out.atDelete, out.engineUpper);
  assert.deepEqual(out.told.map((t) => t.replace(/: .*/, '')), ['unwatched engine', 'unwatched sysrunc', 'between']);
  assert.match(out.told[0] ?? '', /inotify_add_watch .*: ENOSPC/);
});
