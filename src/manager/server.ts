// The unix-socket front of the manager: newline-delimited JSON requests (manager-api/v1.ts),
// validated, dispatched to the service, answered in order.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { METHODS, Request, type MethodName } from '../manager-api/v1.ts';
import { ServiceError, type ManagerService } from './service.ts';
import { socketPeerCred } from '../host/peer-cred.ts';

const MAX_LINE = 1 << 20;

export function createManagerServer(service: ManagerService, log: Logger, queue = new SerialQueue()): Server {
  return createServer((socket) => {
    const refusal = refuseNonRootPeer(socket);
    if (refusal === undefined) serveConnection(socket, service, log, queue);
    else {
      log.warn(refusal, 'refused a connection from a non-root peer');
      refuseConnection(socket, refusal.message);
    }
  });
}

/** Only root may use the manager (it mounts and chowns for its callers): undefined when the peer is root. */
function refuseNonRootPeer(socket: Socket): { message: string; peer?: { pid: number; uid: number } } | undefined {
  let peer;
  try {
    peer = socketPeerCred(socket);
  } catch (err) {
    return { message: `cannot tell the peer's uid (${err instanceof Error ? err.message : String(err)}): only root may use sysrunc-mgr` };
  }
  if (peer.uid === 0) return undefined;
  return { message: `peer uid ${peer.uid} (pid ${peer.pid}): only root may use sysrunc-mgr`, peer: { pid: peer.pid, uid: peer.uid } };
}

/** Answers the first request (or at once, if none comes) with the refusal, then closes. */
function refuseConnection(socket: Socket, message: string): void {
  const reply = (seq: number) => {
    if (!socket.destroyed) socket.end(`${JSON.stringify({ seq, error: { code: 'invalid-request', message } })}\n`);
  };
  socket.setEncoding('utf8');
  let buffer = '';
  const timer = setTimeout(() => reply(-1), 1000);
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    const newline = buffer.indexOf('\n');
    if (newline === -1 && buffer.length <= MAX_LINE) return;
    clearTimeout(timer);
    socket.removeAllListeners('data');
    reply(requestSeq(buffer.slice(0, Math.max(newline, 0))));
  });
  socket.on('close', () => clearTimeout(timer));
  socket.on('error', () => socket.destroy());
}

function requestSeq(line: string): number {
  try {
    const seq: unknown = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof seq === 'number' && Number.isInteger(seq) ? seq : -1;
  } catch {
    return -1;
  }
}

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

function serveConnection(socket: Socket, service: ManagerService, log: Logger, queue: SerialQueue): void {
  socket.setEncoding('utf8');
  let buffer = '';
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_LINE && !buffer.includes('\n')) {
      socket.destroy();
      return;
    }
    let newline;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      // Answers go out in request order on each connection: each waits for the queue anyway.
      // A release waits, outside the queue, for one already under way (its sync-out steps out of
      // the queue): answering "not found" before it is done would let dockerd remove the layer.
      void waitForRelease(line, service)
        .then(() => queue.run(() => handleLine(line, service, log)))
        .then((reply) => {
          if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
        });
    }
  });
  socket.on('error', () => socket.destroy());
}

async function waitForRelease(line: string, service: ManagerService): Promise<void> {
  if (line.includes('"sweep"')) return service.allSettled();
  if (!line.includes('"release"')) return;
  const id = (() => {
    try {
      return (JSON.parse(line) as { params?: { id?: unknown } }).params?.id;
    } catch {
      return undefined;
    }
  })();
  if (typeof id === 'string') await service.settled(id);
}

export async function handleLine(line: string, service: ManagerService, log: Logger): Promise<unknown> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { seq: -1, error: { code: 'invalid-request', message: 'request is not valid JSON' } };
  }
  const request = Request.safeParse(json);
  if (!request.success) {
    return { seq: -1, error: { code: 'invalid-request', message: 'request does not match the v1 envelope' } };
  }
  const { seq, method, params } = request.data;
  if (!Object.hasOwn(METHODS, method)) {
    return { seq, error: { code: 'invalid-request', message: `unknown method "${method}"` } };
  }
  const name = method as MethodName;
  const parsed = METHODS[name].params.safeParse(params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { seq, error: { code: 'invalid-request', message: `${method}: /${issue?.path.join('/') ?? ''}: ${issue?.message ?? 'invalid'}` } };
  }
  try {
    return { seq, result: await dispatch(service, name, parsed.data) };
  } catch (err) {
    if (err instanceof ServiceError) {
      log.warn({ method, code: err.code, err: err.message }, 'request failed');
      return { seq, error: { code: err.code, message: err.message } };
    }
    log.error({ method, err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly');
    return { seq, error: { code: 'internal', message: `${method}: ${err instanceof Error ? err.message : String(err)}` } };
  }
}

function dispatch(service: ManagerService, method: MethodName, params: unknown): unknown | Promise<unknown> {
  switch (method) {
    case 'ping':
      return service.ping();
    case 'prepare':
      return service.prepare(params as Parameters<ManagerService['prepare']>[0]);
    case 'register':
      return service.register(params as Parameters<ManagerService['register']>[0]);
    case 'apply':
      return service.apply(params as Parameters<ManagerService['apply']>[0]);
    case 'release':
      return service.release(params as Parameters<ManagerService['release']>[0]);
    case 'list':
      return service.list();
    case 'status':
      return service.status();
    case 'sweep':
      return service.sweepOrphans().then((released) => ({ released }));
  }
}
