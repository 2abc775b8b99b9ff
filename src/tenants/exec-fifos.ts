// Exec's output: two FIFOs the shim writes the process's stdout and stderr into. Opened O_RDWR and
// non-blocking, so neither the open nor a read waits for the shim (and a FIFO no writer has opened
// yet reads as empty, not as the end); drained by polling until the process is gone.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import path from 'node:path';

const POLL_MS = 20;
const CHUNK = 64 * 1024;

export class ExecOutput {
  private readonly fds: number[];
  private readonly chunks: Buffer[][] = [[], []];
  private readonly timer: NodeJS.Timeout;

  constructor(readonly dir: string) {
    const names = ['stdout', 'stderr'].map((n) => path.join(dir, n));
    const r = spawnSync('mkfifo', ['-m', '0600', ...names], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mkfifo ${names.join(' ')}: ${(r.stderr || String(r.error)).trim()}`);
    this.fds = names.map((n) => openSync(n, constants.O_RDWR | constants.O_NONBLOCK));
    this.timer = setInterval(() => this.drain(), POLL_MS);
  }

  get stdoutPath(): string {
    return path.join(this.dir, 'stdout');
  }

  get stderrPath(): string {
    return path.join(this.dir, 'stderr');
  }

  /** Everything written so far (call once the shim is done with the process: DeleteProcess). */
  finish(): { stdout: string; stderr: string } {
    clearInterval(this.timer);
    this.drain();
    const [out = [], err = []] = this.chunks;
    return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  }

  close(): void {
    clearInterval(this.timer);
    for (const fd of this.fds) closeSync(fd);
    this.fds.length = 0;
  }

  private drain(): void {
    this.fds.forEach((fd, i) => {
      for (;;) {
        const buf = Buffer.allocUnsafe(CHUNK);
        let n: number;
        try {
          n = readSync(fd, buf, 0, CHUNK, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
          throw err;
        }
        if (n <= 0) return;
        this.chunks[i]?.push(buf.subarray(0, n));
      }
    });
  }
}
