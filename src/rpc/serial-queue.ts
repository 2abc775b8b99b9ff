/**
 * Requests run one at a time, in arrival order, across all connections: an allocation or a mount
 * never interleaves with another request's, even when a handler awaits. A handler may step out of
 * the queue for long work that touches only its own container (`unlocked`: a store volume's
 * sync-out), and gets back in line afterwards.
 */
export class SerialQueue {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  async run<T>(task: () => Promise<T> | T): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  /** Called from inside a running task: lets other tasks run while fn does. */
  async unlocked<T>(fn: () => Promise<T>): Promise<T> {
    this.release();
    try {
      return await fn();
    } finally {
      await this.acquire();
    }
  }

  private acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next === undefined) this.held = false;
    else next();
  }
}
