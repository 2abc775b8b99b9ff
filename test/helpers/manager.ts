// A private sysrunc-mgr for a test: its own socket, state dir, run dir and subuid/subgid files,
// so tests never touch /etc/subuid or another test's containers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';
import { C_LAUNCHER } from './launchers.ts';

/** The runtime path engines are given: the C launcher (bin/sysrunc behind it for the calls it hands on). */
export const SYSRUNC = C_LAUNCHER;
export const SYSRUNC_MGR = path.join(REPO_ROOT, 'bin', 'sysrunc-mgr');

export interface TestManagerOptions {
  readonly name: string;
  readonly mode?: 'exclusive' | 'common';
  /** Contents of the private subuid/subgid files (default: none, so the manager adds a range). */
  readonly subid?: string;
  readonly extraArgs?: readonly string[];
  /** Extra environment of the manager process (e.g. SYSRUNC_TEST_FAULT); see setEnv. */
  readonly env?: Record<string, string>;
  /** State dir (default: <base>/state); one outside the base dir is emptied, not removed, by dispose. */
  readonly stateDir?: string;
  /**
   * Run sysrunc's lxcfs (default: off, so the other tests' run dirs hold only container mounts);
   * dispose() then stops it and removes its mounts, which the manager itself leaves for containers.
   */
  readonly lxcfs?: boolean;
  /** The command that starts the manager, its arguments appended (default: the checkout's bin/sysrunc-mgr). */
  readonly command?: readonly string[];
}

export interface TestManager {
  readonly socket: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly logPath: string;
  /** Environment that points sysrunc at this manager. */
  readonly env: Record<string, string>;
  pid(): number;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  restart(): Promise<void>;
  /** Extra environment for the manager's next (re)start, replacing the one before. */
  setEnv(env: Record<string, string>): void;
  log(): string;
  /** Stops it and removes its dirs (run dir only if empty of mounts: the manager cleaned it). */
  dispose(): Promise<void>;
}

export async function startTestManager(o: TestManagerOptions): Promise<TestManager> {
  const base = mkdtempSync(path.join('/var/tmp', `sysrunc-mgr-${o.name}-`));
  const stateDir = o.stateDir ?? path.join(base, 'state');
  const runDir = path.join('/run/sysrunc-test', `mgr-${o.name}`);
  const socket = path.join(runDir, 'mgr.sock');
  const logPath = path.join(base, 'mgr.log');
  mkdirSync(runDir, { recursive: true });
  for (const f of ['subuid', 'subgid']) writeFileSync(path.join(base, f), o.subid ?? '');
  const args = [
    '--socket', socket, '--state-dir', stateDir, '--run-dir', runDir,
    '--subuid-file', path.join(base, 'subuid'), '--subgid-file', path.join(base, 'subgid'),
    '--subid-mode', o.mode ?? 'exclusive', '--log-level', 'debug', '--sweep-interval', '1000',
    ...(o.lxcfs === true ? [] : ['--lxcfs', 'off']), ...(o.extraArgs ?? []),
  ];
  let child: ChildProcess | undefined;
  let extraEnv: Record<string, string> = { ...(o.env ?? {}) };

  const launch = async () => {
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(logPath, 'a');
    const [program, ...prefix] = o.command ?? [SYSRUNC_MGR];
    child = spawn(program ?? SYSRUNC_MGR, [...prefix, ...args], { stdio: ['ignore', fd, fd], detached: false, env: { ...process.env, ...extraEnv } });
    closeSync(fd);
    const started = Date.now();
    while (!(await answers(socket))) {
      if (child.exitCode !== null) throw new Error(`sysrunc-mgr exited ${child.exitCode}: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
      if (Date.now() - started > 20_000) throw new Error(`sysrunc-mgr did not answer on ${socket}: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const waitExit = () =>
    new Promise<void>((resolve) => {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });

  await launch();
  const manager: TestManager = {
    socket,
    stateDir,
    runDir,
    logPath,
    env: { SYSRUNC_MGR_SOCKET: socket },
    pid: () => child?.pid ?? -1,
    async stop() {
      child?.kill('SIGTERM');
      await waitExit();
    },
    async kill9() {
      child?.kill('SIGKILL');
      await waitExit();
    },
    async restart() {
      await manager.stop();
      await launch();
    },
    setEnv(env) {
      extraEnv = { ...env };
    },
    log: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''),
    async dispose() {
      await manager.stop();
      if (o.lxcfs === true) stopLxcfs(runDir);
      rmSync(base, { recursive: true, force: true });
      if (o.stateDir !== undefined) for (const n of readdirSync(o.stateDir)) rmSync(path.join(o.stateDir, n), { recursive: true, force: true });
      rmSync(socket, { force: true });
      try {
        rmdirSync(runDir);
      } catch {
        // not empty: left for the test's own assertion to report
      }
    },
  };
  return manager;
}

/** Kills the lxcfs a manager left running for its containers and unmounts what it served. */
export function stopLxcfs(runDir: string): void {
  const dir = path.join(runDir, 'lxcfs');
  try {
    process.kill(Number(readFileSync(path.join(dir, 'lxcfs.pid'), 'utf8').trim()), 'SIGKILL');
  } catch {
    // not running
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
  for (const mp of mounts.reverse()) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(socket);
    s.once('connect', () => {
      s.end(`${JSON.stringify({ v: 1, seq: 1, method: 'ping', params: {} })}\n`);
      s.once('data', () => (s.destroy(), resolve(true)));
    });
    s.once('error', () => resolve(false));
    // A manager that accepted and then went away (shutting down, killed) never answers.
    s.once('close', () => resolve(false));
  });
}
