// What the scenarios share: options, a scratch dir, runtime --root dirs, and lazily started
// infrastructure (the manager, a private dockerd) that is torn down once at the end.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, SYSRUNC, type TestManager } from '../test/helpers/manager.ts';
import { sweepManager } from '../test/helpers/manager-state.ts';
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureBusyboxRootfs } from '../test/rig/images.ts';
import { bins, REPO_ROOT, rigDirs } from '../test/rig/paths.ts';
import { mountsUnder, pidAlive } from '../test/rig/proc.ts';
import { Cleanup, log, type Row } from './lib.ts';

export const BENCH_RUN_DIR = '/run/sysrunc-bench';
/** Rig / manager names (they become part of paths under /run/sysrunc-test). */
const RIG_NAME = 'sysrunc-bench';
const MGR_NAME = 'bench';

export interface DistBuild {
  /** Newest mtime in dist/. */
  readonly built: string;
  /** sha256 over dist/'s file names and contents. */
  readonly sha: string;
}

/** Identifies one build of a dist/ tree (walked recursively, names sorted). */
function distBuild(dir: string = path.join(REPO_ROOT, 'dist')): DistBuild {
  const hash = createHash('sha256');
  let newest = 0;
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
  for (const f of files) {
    newest = Math.max(newest, statSync(f).mtimeMs);
    hash.update(path.relative(dir, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return { built: new Date(newest).toISOString(), sha: hash.digest('hex') };
}

export interface BenchOptions {
  readonly n: number;
  readonly warmup: number;
  readonly quick: boolean;
}

/** What a scenario hands back: table rows plus anything else worth keeping in the JSON. */
export interface ScenarioResult {
  readonly rows: Row[];
  readonly notes?: string[];
  readonly extra?: Record<string, unknown>;
}

export interface Scenario {
  /** Name for --only (the letter alias works too). */
  readonly key: string;
  readonly alias: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}

export class BenchContext {
  readonly tag = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  readonly cleanup = new Cleanup();
  /** Scratch (bundles, capture files); on the real disk, not tmpfs. */
  readonly work: string;
  /** `--root` of each runtime for direct (non-docker) scenarios. */
  readonly roots: { readonly runc: string; readonly sysrunc: string };
  private mgr: Promise<TestManager> | undefined;
  private snap: { bin: string; main: string; build: DistBuild } | undefined;
  private daemon: Promise<DockerDaemon> | undefined;

  /** @param selected keys of the scenarios this run will execute (some share work). */
  constructor(
    readonly opts: BenchOptions,
    readonly selected: ReadonlySet<string>,
  ) {
    this.work = mkdtempSync(path.join('/var/tmp', 'sysrunc-bench-run-'));
    const base = path.join(BENCH_RUN_DIR, this.tag);
    this.roots = { runc: path.join(base, 'runc'), sysrunc: path.join(base, 'sysrunc') };
    mkdirSync(this.roots.runc, { recursive: true });
    mkdirSync(this.roots.sysrunc, { recursive: true });
    this.cleanup.defer('scratch dir', () => rmSync(this.work, { recursive: true, force: true }));
    this.cleanup.defer('runtime roots', () => this.removeRoots(base));
  }

  /** The private sysrunc-mgr every sysrunc call of the bench talks to. */
  manager(): Promise<TestManager> {
    this.mgr ??= (async () => {
      for (let attempt = 1; ; attempt++) {
        // Others may rebuild dist/ while the bench runs. The shim side runs from a snapshot taken
        // together with the manager's start, so every call of the bench talks to one build.
        if (attempt > 5) throw new Error('dist/ keeps changing; cannot start a manager that matches the shim');
        const before = distBuild();
        const snap = this.snapshotShim(before);
        if (snap === undefined) {
          log(`dist/ changed while it was copied (attempt ${attempt}); again in 2 s`);
          await new Promise((resolve) => setTimeout(resolve, 2000));
          continue;
        }
        log(`starting sysrunc-mgr (dist/ built ${before.built}, sha256 ${before.sha.slice(0, 12)})`);
        // SYSRUNC_BENCH_STATE_DIR: the manager's state dir (copy-mode volumes live there) on another filesystem.
        const stateDir = process.env['SYSRUNC_BENCH_STATE_DIR'];
        // The lxcfs scenario (k) needs the manager's lxcfs; its mounts stay out of the leftover checks.
        const m = await startTestManager({ name: MGR_NAME, lxcfs: this.selected.has('lxcfs'), ...(stateDir ? { stateDir } : {}) });
        if (distBuild().sha !== before.sha) {
          log(`dist/ was rebuilt while the manager started (attempt ${attempt}); starting it again`);
          await m.dispose();
          continue;
        }
        this.snap = { ...snap, build: before };
        this.cleanup.defer('sysrunc-mgr', async () => {
          // A Ctrl-C reaches the manager too (same process group); sysrunc's delete needs it to
          // release its part, so bring it back (it keeps its records across restarts).
          await this.reviveManager(); // a restart also reconciles: releases what no container uses
          this.deleteLeftovers(m.env);
          // The manager releases deleted containers on its own a few ms after runc's delete; the
          // sweep waits for that (and for anything it would catch later).
          await sweepManager(m.socket).catch(() => undefined);
          const containerMounts = () => mountsUnder([m.runDir]).filter((mp) => !mp.startsWith(`${m.runDir}/lxcfs/`));
          if (containerMounts().length > 0) {
            log('mounts left in the manager run dir after a sweep; restarting sysrunc-mgr so it reconciles');
            await m.restart();
          }
          const left = containerMounts();
          await m.dispose();
          if (left.length > 0) throw new Error(`mounts left under ${m.runDir} at the end: ${left.join(', ')}`);
        });
        return m;
      }
    })();
    return this.mgr;
  }

  /**
   * A Ctrl-C reaches the manager too (same process group), but sysrunc's delete needs it to release
   * its part: bring it back for cleanup (it keeps its records across restarts).
   */
  async reviveManager(): Promise<void> {
    if (this.mgr === undefined) return;
    const m = await this.mgr;
    if (pidAlive(m.pid())) return;
    log('sysrunc-mgr is gone; restarting it so sysrunc can release leftover containers');
    await m.restart();
  }

  /** The snapshot's launcher, dist/sysrunc or bin/sysrunc (valid once manager() resolved). */
  get sysrunc(): string {
    if (this.snap === undefined) throw new Error('bench: sysrunc used before the manager started');
    return this.snap.bin;
  }

  /** dist/sysrunc.mjs of the snapshot (valid once manager() resolved). */
  get distMain(): string {
    if (this.snap === undefined) throw new Error('bench: sysrunc used before the manager started');
    return this.snap.main;
  }

  /** Which build the bench measured (for the JSON). */
  get build(): DistBuild | undefined {
    return this.snap?.build;
  }

  /**
   * <work>/snap/{bin/*, dist/*, node_modules -> repo}: the launchers find dist/ beside themselves.
   * Undefined when dist/ no longer matches `expect` (a rebuild raced the copy).
   */
  private snapshotShim(expect: DistBuild): { bin: string; main: string } | undefined {
    const root = path.join(this.work, 'snap');
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    // The runtime path engines are given: the C launcher (dist/sysrunc), where it is built and
    // BENCH_LAUNCHER=script does not ask for the sh one (bin/sysrunc, its fallback) to compare.
    const cLauncher = path.join(root, 'dist', 'sysrunc');
    const bin = process.env.BENCH_LAUNCHER !== 'script' && existsSync(path.join(REPO_ROOT, 'dist', 'sysrunc')) ? cLauncher : path.join(root, 'bin', 'sysrunc');
    const main = path.join(root, 'dist', 'sysrunc.mjs');
    // All of bin/ (the rewritten config's hooks name launchers beside bin/sysrunc) and all of dist/.
    cpSync(path.join(REPO_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
    cpSync(path.join(REPO_ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
    return distBuild(path.join(root, 'dist')).sha === expect.sha ? { bin, main } : undefined;
  }

  /** process.env plus the manager's socket. */
  async sysruncEnv(): Promise<NodeJS.ProcessEnv> {
    return { ...process.env, ...(await this.manager()).env };
  }

  busyboxRootfs(): Promise<string> {
    return ensureBusyboxRootfs();
  }

  /** Where the `sysrunc-timed` runtime appends "<start ns> <end ns> <subcommand> <exit> <last arg>" per call. */
  get timedRuntimeLog(): string {
    return path.join(this.work, 'sysrunc-timed.log');
  }

  /** The same for the `runc-timed` runtime (plain runc behind the same wrapper). */
  get timedRuncLog(): string {
    return path.join(this.work, 'runc-timed.log');
  }

  /**
   * A private dockerd with runtimes runc (stock), sysrunc, runc-timed, and sysrunc-timed: bin/sysrunc behind a
   * sh wrapper that logs each call's wall time (see timedRuntimeLog), for per-call numbers inside
   * the daemon. sysrunc is pointed at the manager.
   */
  dockerd(): Promise<DockerDaemon> {
    this.daemon ??= (async () => {
      const m = await this.manager();
      const wrapper = path.join(this.work, 'sysrunc-timed');
      writeTimedWrapper(wrapper, this.sysrunc, this.timedRuntimeLog);
      // Plain runc behind the same wrapper: per-call numbers of both, at the same wrapper cost.
      const runcWrapper = path.join(this.work, 'runc-timed');
      writeTimedWrapper(runcWrapper, 'runc', this.timedRuncLog);
      log('starting a private dockerd');
      // Ownership modes are the operator's choice (runtime flags), never the container's environment.
      const runtimes: Record<string, { path: string; runtimeArgs?: string[] }> = { sysrunc: { path: this.sysrunc }, 'sysrunc-timed': { path: wrapper }, 'runc-timed': { path: runcWrapper } };
      for (const mode of ['idmap', 'clone', 'chown']) {
        runtimes[`sysrunc-${mode}`] = { path: this.sysrunc, runtimeArgs: [`--sysrunc-ownership=${mode}`] };
        runtimes[`sysrunc-timed-${mode}`] = { path: wrapper, runtimeArgs: [`--sysrunc-ownership=${mode}`] };
      }
      const d = await startDockerd({ name: RIG_NAME, runtimes, env: m.env });
      this.cleanup.defer('dockerd', async () => {
        const ps = await d.docker(['ps', '-aq'], { reject: false });
        if (ps.stdout.trim() !== '') await this.reviveManager(); // removing them runs sysrunc delete
        await d.stop();
      });
      return d;
    })();
    return this.daemon;
  }

  /** Environment for the docker CLI against the private daemon (as the rig's own docker() uses). */
  dockerEnv(d: DockerDaemon): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: path.join(rigDirs(d.name).lib, 'docker-config') };
    delete env['DOCKER_CONTEXT'];
    delete env['DOCKER_TLS_VERIFY'];
    delete env['DOCKER_CERT_PATH'];
    return env;
  }

  /** Deletes whatever containers are left in the bench roots (sysrunc's through sysrunc, so the manager releases them). */
  private leftoverIds(): { runc: string[]; sysrunc: string[] } {
    const list = (root: string): string[] =>
      existsSync(root) ? (spawnSync(bins.runc, ['--root', root, 'list', '-q'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? []) : [];
    return { runc: list(this.roots.runc), sysrunc: list(this.roots.sysrunc) };
  }

  private deleteLeftovers(mgrEnv: Record<string, string> | undefined): void {
    const left = this.leftoverIds();
    for (const [rt, root] of [['runc', this.roots.runc], ['sysrunc', this.roots.sysrunc]] as const) {
      for (const id of left[rt]) {
        log(`deleting leftover ${rt} container ${id}`);
        const bin = rt === 'runc' || mgrEnv === undefined ? bins.runc : this.snap?.bin ?? SYSRUNC;
        spawnSync(bin, ['--root', root, 'delete', '--force', id], { env: { ...process.env, ...mgrEnv }, stdio: 'ignore' });
      }
    }
  }

  private removeRoots(base: string): void {
    this.deleteLeftovers(undefined);
    const left = mountsUnder([base]);
    if (left.length > 0) throw new Error(`mounts left under ${base}: ${left.join(', ')}`);
    rmSync(base, { recursive: true, force: true });
    try {
      if (readdirSync(BENCH_RUN_DIR).length === 0) rmdirSync(BENCH_RUN_DIR);
    } catch {
      // another bench run is using it
    }
  }
}

/** A sh wrapper around `runtime` that appends each call's wall time to `logFile` (see timedRuntimeLog). */
function writeTimedWrapper(wrapper: string, runtime: string, logFile: string): void {
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      's=$(date +%s%N)',
      `${runtime} "$@"`,
      'rc=$?',
      'e=$(date +%s%N)',
      'sub=-',
      'for a in "$@"; do case $a in create|start|state|kill|delete|run|exec|features|pause|resume|ps|update) sub=$a; break ;; esac; done',
      'for last in "$@"; do :; done',
      `echo "$s $e $sub $rc $last" >>${logFile}`,
      'exit $rc',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}
