// sysrunc's own lxcfs: started by the manager as a child (the machines sysrunc runs on need not run
// systemd as PID 1), on <run-dir>/lxcfs/fuse, and restarted when it dies. It is left running when
// the manager stops (containers keep reading their /proc through it); the next manager adopts it.
//
// Containers never bind lxcfs's mount itself: they bind the files of <run-dir>/lxcfs/view, each a
// shared read-only bind of lxcfs's file. When lxcfs dies its binds go stale ("Transport endpoint is
// not connected"); the restarted lxcfs's binds are stacked on the stale ones, and since each bind is
// shared and every container's copy is its slave, the new bind propagates into all running
// containers: their figures come back without a restart. Each restart adds one mount per file.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, lstatSync, mkdirSync, statSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { readMountInfo, unmount } from '../../host/mount.ts';
import { sharedReadOnlyBind } from '../../host/shared-bind.ts';
import { LXCFS_CONTAINER_FILES, lxcfsFilePair, lxcfsLayout, type LxcfsLayout } from './layout.ts';
import type { LxcfsFact } from '../../spec-transform/lxcfs-view.ts';
import { parseCpuList } from '../../spec-transform/lxcfs-cpuset.ts';

/** lxcfs 5.0's CPU view (cpuinfo, stat, cpu/online follow the CFS quota and cpuset), loadavg, pidfd tracking. */
export const LXCFS_ARGS: readonly string[] = ['--foreground', '--enable-cfs', '--enable-loadavg', '--enable-pidfd'];

export type LxcfsState = 'off' | 'missing' | 'starting' | 'up' | 'down';

export interface LxcfsStatus {
  readonly state: LxcfsState;
  readonly binary: string;
  readonly mountpoint: string;
  readonly pid?: number;
  /** Times lxcfs was (re)started after the first start, by this manager. */
  readonly restarts: number;
  /** Stacked binds per view file (1 + the restarts across managers). */
  readonly layers: number;
  readonly message?: string;
}

export interface LxcfsOptions {
  readonly runDir: string;
  readonly enabled: boolean;
  /** The lxcfs executable: a path, or a name looked up in PATH. */
  readonly binary: string;
  readonly log: Logger;
  /** The mount listener's executable (nested containers' figures); used when it exists. */
  readonly mountListener?: string;
}

const MOUNT_WAIT_MS = 10_000;
const MAX_BACKOFF_MS = 10_000;
/** Up this long, a later death restarts at once again. */
const STABLE_MS = 30_000;
const ADOPTED_POLL_MS = 1_000;

export class LxcfsSupervisor {
  readonly layout: LxcfsLayout;
  private state: LxcfsState;
  private message: string | undefined;
  private child: ChildProcess | undefined;
  private pid: number | undefined;
  private restarts = 0;
  private backoffMs = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private resolved: string | undefined;
  private onlineCpus: number[] | undefined;

  constructor(private readonly o: LxcfsOptions) {
    this.layout = lxcfsLayout(o.runDir);
    this.state = o.enabled ? 'starting' : 'off';
  }

  /** Starts (or adopts) lxcfs; never throws: a missing or failing lxcfs is a warning, containers still run. */
  async start(): Promise<void> {
    if (!this.o.enabled) return;
    this.resolved = findExecutable(this.o.binary);
    if (this.resolved === undefined) {
      this.state = 'missing';
      this.message = `${this.o.binary} not found: containers see the host's /proc figures (install lxcfs)`;
      this.o.log.warn({ binary: this.o.binary }, `lxcfs: ${this.message}`);
      return;
    }
    mkdirSync(this.layout.dir, { recursive: true, mode: 0o711 });
    const adopted = this.adoptRunning();
    if (adopted !== undefined) {
      this.pid = adopted;
      this.state = 'up';
      this.o.log.info({ lxcfsPid: adopted, mountpoint: this.layout.fuse }, 'lxcfs: adopted the one a previous manager started');
      this.pollAdopted();
      return;
    }
    await this.launch();
  }

  /**
   * What containers bind while lxcfs answers. A container created while it is down gets the
   * kernel's files: runc cannot bind a file whose FUSE server is gone.
   */
  fact(): LxcfsFact | undefined {
    if (this.state !== 'up' || !answers(lxcfsFilePair(this.layout, LXCFS_CONTAINER_FILES[0] as string).view)) return undefined;
    this.onlineCpus ??= parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
    const listener = this.o.mountListener !== undefined && existsSync(this.o.mountListener) ? { mountListener: this.o.mountListener } : {};
    return { files: LXCFS_CONTAINER_FILES.map((destination) => ({ destination, source: lxcfsFilePair(this.layout, destination).view })), onlineCpus: this.onlineCpus, ...listener };
  }

  status(): LxcfsStatus {
    return {
      state: this.state,
      binary: this.resolved ?? this.o.binary,
      mountpoint: this.layout.fuse,
      ...(this.pid === undefined ? {} : { pid: this.pid }),
      restarts: this.restarts,
      layers: this.layers(),
      ...(this.message === undefined ? {} : { message: this.message }),
    };
  }

  /** Stops supervising; lxcfs itself keeps running for the containers. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.child?.removeAllListeners('exit');
  }

  private layers(): number {
    const first = lxcfsFilePair(this.layout, LXCFS_CONTAINER_FILES[0] as string).view;
    return readMountInfo().filter((m) => m.mountPoint === first).length;
  }

  private async launch(): Promise<void> {
    this.state = this.restarts === 0 && this.layers() === 0 ? 'starting' : 'down';
    // A dead lxcfs leaves its FUSE mount behind, disconnected.
    if (readMountInfo().some((m) => m.mountPoint === this.layout.fuse)) unmount(this.layout.fuse, { detach: true });
    mkdirSync(this.layout.fuse, { recursive: true });
    const out = openSync(this.layout.logFile, 'a');
    let child: ChildProcess;
    try {
      // Its own process group, output to a file: it must outlive the manager (a pipe to a dead
      // manager would end it with SIGPIPE), and a signal to the manager's group must not reach it.
      child = spawn(this.resolved as string, [...LXCFS_ARGS, '--pidfile', this.layout.pidFile, this.layout.fuse], { stdio: ['ignore', out, out], detached: true });
    } finally {
      closeSync(out);
    }
    child.unref();
    this.child = child;
    this.startedAt = Date.now();
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(err.message));
      child.once('exit', (code, signal) => resolve(signal === null ? `exit status ${code}` : `signal ${signal}`));
    });
    const mounted = await this.waitForMount(exited);
    if (mounted !== true) return this.failed(`did not mount ${this.layout.fuse}: ${mounted}`);
    this.pid = child.pid;
    try {
      this.bindViews();
    } catch (err) {
      child.kill('SIGKILL');
      return this.failed(`binding its files: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.state = 'up';
    this.message = undefined;
    this.o.log.info({ lxcfsPid: child.pid, mountpoint: this.layout.fuse, restarts: this.restarts, layers: this.layers() }, 'lxcfs: up');
    void exited.then((why) => {
      if (this.closed || this.child !== child) return;
      this.o.log.warn({ lxcfsPid: child.pid, why }, 'lxcfs: died; restarting it (containers read stale /proc files until it is back)');
      this.scheduleRestart(why);
    });
  }

  private async waitForMount(exited: Promise<string>): Promise<true | string> {
    let ended: string | undefined;
    void exited.then((why) => (ended = why));
    const deadline = Date.now() + MOUNT_WAIT_MS;
    while (Date.now() < deadline) {
      if (ended !== undefined) return `lxcfs ended (${ended}); see ${this.layout.logFile}`;
      if (readMountInfo().some((m) => m.mountPoint === this.layout.fuse && m.fsType === 'fuse.lxcfs')) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    this.child?.kill('SIGKILL');
    return `no mount after ${MOUNT_WAIT_MS} ms`;
  }

  private bindViews(): void {
    for (const file of LXCFS_CONTAINER_FILES) {
      const pair = lxcfsFilePair(this.layout, file);
      mkdirSync(path.dirname(pair.view), { recursive: true, mode: 0o755 });
      // A stat through a dead lxcfs's bind fails with ENOTCONN: the file is there, under it.
      if (!viewFileExists(pair.view)) writeFileSync(pair.view, '', { mode: 0o444 });
      sharedReadOnlyBind(pair.lxcfs, pair.view);
    }
  }

  private failed(message: string): void {
    this.state = this.layers() === 0 ? 'starting' : 'down';
    this.message = message;
    this.o.log.warn(`lxcfs: ${message}`);
    this.scheduleRestart(message);
  }

  private scheduleRestart(why: string): void {
    if (this.closed) return;
    this.state = this.layers() === 0 ? 'starting' : 'down';
    this.message = why;
    this.child = undefined;
    this.pid = undefined;
    this.backoffMs = Date.now() - this.startedAt > STABLE_MS ? 0 : Math.min(MAX_BACKOFF_MS, Math.max(100, this.backoffMs * 2));
    this.timer = setTimeout(() => {
      this.restarts += 1;
      void this.launch().catch((err: unknown) => this.failed(err instanceof Error ? err.message : String(err)));
    }, this.backoffMs);
    this.timer.unref();
  }

  /** The lxcfs a previous manager left serving our mount, if it still answers. */
  private adoptRunning(): number | undefined {
    let pid: number;
    try {
      pid = Number(readFileSync(this.layout.pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !servesMount(pid, this.layout.fuse)) return undefined;
    try {
      readFileSync(path.join(this.layout.fuse, 'proc', 'uptime'));
    } catch {
      process.kill(pid, 'SIGKILL'); // alive but not answering: replace it
      return undefined;
    }
    return this.layers() === 0 ? undefined : pid;
  }

  /** Not our child: its death is noticed by looking. */
  private pollAdopted(): void {
    this.timer = setTimeout(() => {
      if (this.closed) return;
      if (this.pid !== undefined && servesMount(this.pid, this.layout.fuse)) return this.pollAdopted();
      this.o.log.warn({ lxcfsPid: this.pid }, 'lxcfs: the adopted lxcfs is gone; restarting it');
      this.scheduleRestart('adopted lxcfs gone');
    }, ADOPTED_POLL_MS);
    this.timer.unref();
  }
}

function answers(viewFile: string): boolean {
  try {
    statSync(viewFile);
    return true;
  } catch {
    return false;
  }
}

function viewFileExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

function servesMount(pid: number, mountpoint: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie (state Z) no longer serves anything.
    return args.includes(mountpoint) && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function findExecutable(binary: string): string | undefined {
  const candidates = binary.includes('/') ? [binary] : (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter((d) => d !== '').map((d) => path.join(d, binary));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return path.resolve(candidate);
    } catch {
      // next
    }
  }
  return undefined;
}
