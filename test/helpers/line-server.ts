// A stand-in for a daemon in the RPC tests: a unix-socket server that hands each request line to
// `answer` with its connection, which writes what the test wants (or nothing, or drops the line);
// and converse(), the client side of a raw conversation with such a daemon.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface LineServer {
  readonly socket: string;
  /** Every request line received, over all connections. */
  readonly requests: string[];
  /** How many connections were accepted. */
  connections(): number;
  close(): Promise<void>;
}

/** `answer(request, conn, n)`: n counts the requests so far (1 for the first). */
export async function lineServer(answer: (request: { seq: number; method: string; line: string }, conn: Socket, n: number) => void): Promise<LineServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-rpc-'));
  chmodSync(dir, 0o755);
  const socket = path.join(dir, 's.sock');
  const requests: string[] = [];
  let connections = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((conn) => {
    connections++;
    open.add(conn);
    conn.on('close', () => open.delete(conn));
    let buffer = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        requests.push(line);
        const { seq, method } = JSON.parse(line) as { seq: number; method: string };
        answer({ seq, method, line }, conn, requests.length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A connection a test left waiting would keep close() from ever finishing.
        for (const conn of open) conn.destroy();
        rmSync(dir, { recursive: true, force: true });
      }),
  };
}

export function writeLine(conn: Socket, msg: unknown): void {
  conn.write(`${JSON.stringify(msg)}\n`);
}

/** Sends lines on one connection and collects answer lines until `count` have come. */
export function converse(socket: string, lines: readonly string[], count: number, onAnswer?: (answer: string, all: string[]) => void): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    const answers: string[] = [];
    let buffer = '';
    c.setEncoding('utf8');
    c.on('error', reject);
    c.on('data', (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        answers.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        onAnswer?.(answers.at(-1)!, answers);
        if (answers.length === count) {
          c.destroy();
          resolve(answers);
        }
      }
    });
    c.on('connect', () => {
      for (const line of lines) c.write(`${line}\n`);
    });
  });
}

/** A stand-in daemon that answers every request with `result`. */
export function answeringWith(result: unknown): Promise<LineServer> {
  return lineServer((req, conn) => writeLine(conn, { seq: req.seq, result }));
}
