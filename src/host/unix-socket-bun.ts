// One request/reply line over a unix socket for the compiled per-call binary, through Bun's native
// socket API: measured here, Bun.connect adds ~0.5 ms to the binary's start-up, node:net's
// emulation ~20 ms (its set-up and teardown), libc through bun:ffi ~2.5 ms (compiling the
// trampolines). Only loaded under Bun (see manager-client/call.ts).

// The part of Bun's socket API used here, declared locally rather than pulling in Bun's whole type
// package next to Node's.
interface BunUnixSocket {
  write(data: string): number;
  end(): void;
  timeout(seconds: number): void;
}

interface BunSocketHandler {
  open?(socket: BunUnixSocket): void;
  data?(socket: BunUnixSocket, data: Uint8Array): void;
  close?(socket: BunUnixSocket): void;
  error?(socket: BunUnixSocket, error: Error): void;
  timeout?(socket: BunUnixSocket): void;
}

interface BunRuntime {
  connect(options: { unix: string; socket: BunSocketHandler }): Promise<BunUnixSocket>;
}

/** A failed connect or exchange; `code` is the errno name (ENOENT, ECONNREFUSED...) or EOF/ETIMEDOUT. */
export class SocketCallError extends Error {
  constructor(
    readonly syscall: string,
    readonly code: string,
  ) {
    super(`${syscall}: ${code}`);
  }
}

function bun(): BunRuntime {
  return (globalThis as unknown as { Bun: BunRuntime }).Bun;
}

/** Connects, writes `line`, resolves with the first line of the reply (without the newline). */
export async function requestLine(socketPath: string, line: string, timeoutMs: number): Promise<string> {
  let settle!: { resolve: (reply: string) => void; reject: (err: Error) => void };
  const reply = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  const chunks: Buffer[] = [];
  let done = false;
  const finish = (socket: BunUnixSocket, outcome: string | Error) => {
    if (done) return;
    done = true;
    socket.end();
    if (typeof outcome === 'string') settle.resolve(outcome);
    else settle.reject(outcome);
  };
  try {
    const socket = await bun().connect({
      unix: socketPath,
      socket: {
        open: (s) => void s.write(line),
        data: (s, data) => {
          const chunk = Buffer.from(data);
          const newline = chunk.indexOf(10);
          if (newline === -1) return void chunks.push(chunk);
          chunks.push(chunk.subarray(0, newline));
          finish(s, Buffer.concat(chunks).toString('utf8'));
        },
        close: (s) => finish(s, new SocketCallError('read', 'EOF')),
        error: (s, err) => finish(s, new SocketCallError('read', (err as Error & { code?: string }).code ?? err.message)),
        // A manager that stops answering must not hang the caller (and dockerd) forever.
        timeout: (s) => finish(s, new SocketCallError('read', 'ETIMEDOUT')),
      },
    });
    socket.timeout(Math.ceil(timeoutMs / 1000));
  } catch (err) {
    throw new SocketCallError('connect', (err as Error & { code?: string }).code ?? String(err));
  }
  return reply;
}
