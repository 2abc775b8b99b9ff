// Tells when processes that are not the manager's children exit: a pidfd per process (readable
// once the process has exited, whoever reaps it), all polled in one poll(2) call that runs on one
// of libuv's threads (koffi's asynchronous call), so the manager's own thread never blocks and no
// process is started per container. An eventfd in the same poll wakes it when the set changes; with
// nothing watched, nothing is polled, and nothing keeps the process alive.
import { closeSync, readSync, writeSync } from 'node:fs';
import { libc, O_CLOEXEC, O_NONBLOCK, pollfdAt, pollfdsIn, POLLIN, sysFail } from './libc.ts';

export class ProcessExitWatch {
  /** Watched processes' pidfds, by the caller's key. */
  private readonly pidfds = new Map<string, number>();
  private wake: number | undefined;
  /** A poll(2) is in flight on libuv's thread (its fds stay open until it returns). */
  private polling = false;
  /** fds to close once the poll in flight has returned (closing them under it could hand a reused fd to the kernel's poll). */
  private readonly toClose: number[] = [];
  private closed = false;

  /** exited(key) is called on the manager's thread, once per watched process that exits. */
  constructor(private readonly exited: (key: string) => void) {}

  /**
   * Watches pid under key (one process per key: a second call replaces the first). isSame tells,
   * once the pidfd is open, whether pid is still the process meant (a pid can be reused); a process
   * already gone, or not the one meant, is reported as exited on the next turn of the event loop.
   */
  watch(key: string, pid: number, isSame: () => boolean): void {
    if (this.closed) return;
    this.unwatch(key);
    const pidfd = libc().pidfdOpen(pid, 0);
    if (pidfd === -1) {
      const err = sysFail('pidfd_open', `pid ${pid}`);
      if (err.code !== 'ESRCH') throw err;
      setImmediate(() => this.exited(key));
      return;
    }
    if (!isSame()) {
      closeSync(pidfd);
      setImmediate(() => this.exited(key));
      return;
    }
    this.pidfds.set(key, pidfd);
    this.changed();
  }

  unwatch(key: string): void {
    const pidfd = this.pidfds.get(key);
    if (pidfd === undefined) return;
    this.pidfds.delete(key);
    this.release(pidfd);
    this.changed();
  }

  /** Whether key's process is watched (not yet seen to exit). */
  watches(key: string): boolean {
    return this.pidfds.has(key);
  }

  /** Stops watching; a poll in flight is woken to return (its fds are closed then). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.polling && this.wake !== undefined) wakeUp(this.wake);
    for (const pidfd of this.pidfds.values()) this.release(pidfd);
    this.pidfds.clear();
    if (this.wake !== undefined) this.release(this.wake);
    this.wake = undefined;
  }

  /** Closes fd now, or once the poll in flight (which may have it in its set) returns. */
  private release(fd: number): void {
    if (this.polling) this.toClose.push(fd);
    else closeSync(fd);
  }

  /** The set changed: the poll in flight is woken (it polls the new set when it returns), or one starts. */
  private changed(): void {
    if (this.polling) {
      if (this.wake !== undefined) wakeUp(this.wake);
      return;
    }
    this.startPoll();
  }

  private startPoll(): void {
    if (this.closed || this.pidfds.size === 0) return;
    if (this.wake === undefined) {
      const fd = libc().eventfd(0, O_CLOEXEC | O_NONBLOCK);
      if (fd === -1) throw sysFail('eventfd');
      this.wake = fd;
    }
    const keys = [...this.pidfds.keys()];
    // Entry 0 is the eventfd, entry i + 1 keys[i]'s pidfd.
    const fds = pollfdsIn([this.wake, ...keys.map((key) => this.pidfds.get(key) as number)]);
    this.polling = true;
    libc().pollAsync(fds, keys.length + 1, -1, () => this.polled(keys, fds));
  }

  /** Back on the manager's thread: reports the exits the poll saw, then polls the set as it is now. */
  private polled(keys: readonly string[], fds: Buffer): void {
    this.polling = false;
    for (const fd of this.toClose.splice(0)) closeSync(fd);
    if (this.wake !== undefined) drain(this.wake);
    const exited: string[] = [];
    keys.forEach((key, i) => {
      const { fd: pidfd, revents } = pollfdAt(fds, i + 1);
      // Only if the key still has that very pidfd: an unwatch or a new watch since made it stale.
      if ((revents & POLLIN) === 0 || this.pidfds.get(key) !== pidfd) return;
      this.pidfds.delete(key);
      closeSync(pidfd);
      exited.push(key);
    });
    this.startPoll();
    for (const key of exited) this.exited(key);
  }
}

function wakeUp(eventfd: number): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  try {
    writeSync(eventfd, one);
  } catch (err) {
    // EAGAIN: the counter is full, so the poll is woken already.
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
  }
}

function drain(eventfd: number): void {
  try {
    readSync(eventfd, Buffer.alloc(8), 0, 8, null);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
  }
}
