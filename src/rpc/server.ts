// The one server of sysrunc's JSON-lines services (the manager, the depot daemon, the tenant
// service): root-only peers (SO_PEERCRED), line framing, the request envelope, dispatch from the
// API's method table to the service's handlers, and errors mapped to answers. The wire format is
// in method-table.ts.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { socketPeerCred } from '../host/peer-cred.ts';
import { firstIssue, requestEnvelope, type EventOf, type MethodOf, type MethodTable, type ParamsOf, type ResultOf, type ServiceApi } from './method-table.ts';
import type { SerialQueue } from './serial-queue.ts';

/** What a handler gets besides its params. */
export interface CallContext<E> {
  /** Sends one event of a streaming method (before its result). */
  event(event: E): void;
  /** Aborted when the client's connection closes: a long poll stops waiting. */
  readonly abort: AbortSignal;
}

export interface Handler<T extends MethodTable, M extends MethodOf<T>> {
  run(params: ParamsOf<T, M>, call: CallContext<EventOf<T, M>>): Promise<ResultOf<T, M>> | ResultOf<T, M>;
  /**
   * Awaited before the request takes its turn in the queue: a request that must wait for work
   * already under way (the manager's release, for a release running outside the queue) waits here,
   * where it holds up no other request.
   */
  waitFirst?(params: ParamsOf<T, M>): Promise<void>;
  /**
   * After waitFirst: the answer when the request needs no turn in the queue (what it would do is
   * done already), or undefined: it takes its turn and run answers.
   */
  answerUnqueued?(params: ParamsOf<T, M>): ResultOf<T, M> | undefined;
}

export type Handlers<T extends MethodTable> = { readonly [M in MethodOf<T>]: Handler<T, M> };

export interface RpcServerOptions<T extends MethodTable> {
  readonly api: ServiceApi<T>;
  readonly handlers: Handlers<T>;
  readonly log: Logger;
  /** The code and message of an error the service answers with on purpose; undefined: an internal error. */
  expectedError(err: unknown): { code: string; message: string } | undefined;
  /** Runs requests one at a time (the manager); without it requests run concurrently. */
  readonly queue?: SerialQueue;
  /** A line longer than this, with no newline yet, ends the connection. */
  readonly maxLineBytes?: number;
}

const DEFAULT_MAX_LINE = 2 << 20;
/** A refused peer that sends no request is answered (seq -1) after this long. */
const REFUSAL_WAIT_MS = 1000;

export function createRpcServer<T extends MethodTable>(o: RpcServerOptions<T>): Server {
  return createServer((socket) => {
    const refusal = refuseNonRootPeer(socket, o.api.daemon);
    if (refusal === undefined) {
      serveConnection(socket, o);
      return;
    }
    o.log.warn(refusal, 'refused a connection from a non-root peer');
    refuseConnection(socket, refusal.message, o.maxLineBytes ?? DEFAULT_MAX_LINE);
  });
}

/** Only root may use sysrunc's daemons (they mount, chown and run containers as root's): undefined when the peer is root. */
function refuseNonRootPeer(socket: Socket, daemon: string): { message: string; peer?: { pid: number; uid: number } } | undefined {
  let peer;
  try {
    peer = socketPeerCred(socket);
  } catch (err) {
    return { message: `cannot tell the peer's uid (${err instanceof Error ? err.message : String(err)}): only root may use ${daemon}` };
  }
  if (peer.uid === 0) return undefined;
  return { message: `peer uid ${peer.uid} (pid ${peer.pid}): only root may use ${daemon}`, peer: { pid: peer.pid, uid: peer.uid } };
}

/** Answers the first request with the refusal under its seq (or with seq -1, if none comes), then closes. */
function refuseConnection(socket: Socket, message: string, maxLine: number): void {
  const reply = (seq: number): void => {
    if (!socket.destroyed) socket.end(`${JSON.stringify({ seq, error: { code: 'invalid-request', message } })}\n`);
  };
  socket.setEncoding('utf8');
  let buffer = '';
  const timer = setTimeout(() => reply(-1), REFUSAL_WAIT_MS);
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    const newline = buffer.indexOf('\n');
    if (newline === -1 && buffer.length <= maxLine) return;
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

function serveConnection<T extends MethodTable>(socket: Socket, o: RpcServerOptions<T>): void {
  const gone = new AbortController();
  const write = (msg: unknown): void => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`);
  };
  const maxLine = o.maxLineBytes ?? DEFAULT_MAX_LINE;
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > maxLine && !buffer.includes('\n')) {
      socket.destroy();
      return;
    }
    let newline;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      void answerLine(line, o, write, gone.signal).then(write);
    }
  });
  socket.on('close', () => gone.abort());
  socket.on('error', () => socket.destroy());
}

/** The answer to one request line (its events, if any, are written as they come). */
export async function answerLine<T extends MethodTable>(line: string, o: RpcServerOptions<T>, write: (msg: unknown) => void, abort: AbortSignal): Promise<unknown> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { seq: -1, error: { code: 'invalid-request', message: 'request is not valid JSON' } };
  }
  const request = requestEnvelope(o.api.version).safeParse(json);
  if (!request.success) return { seq: -1, error: { code: 'invalid-request', message: `request does not match the v${o.api.version} envelope` } };
  const { seq, method, params } = request.data;
  if (!Object.hasOwn(o.api.methods, method)) return { seq, error: { code: 'invalid-request', message: `unknown method ${JSON.stringify(method)}` } };
  const name = method as MethodOf<T>;
  const parsed = o.api.methods[name]!.params.safeParse(params);
  if (!parsed.success) return { seq, error: { code: 'invalid-request', message: `${method}: ${firstIssue(parsed.error)}` } };
  const handler = o.handlers[name];
  const call: CallContext<EventOf<T, typeof name>> = { event: (event) => write({ seq, event }), abort };
  try {
    const p = parsed.data as ParamsOf<T, typeof name>;
    await handler.waitFirst?.(p);
    const early = handler.answerUnqueued?.(p);
    if (early !== undefined) return { seq, result: early };
    const result = o.queue === undefined ? await handler.run(p, call) : await o.queue.run(() => handler.run(p, call));
    return { seq, result };
  } catch (err) {
    const expected = o.expectedError(err);
    if (expected !== undefined) {
      o.log.info({ method, code: expected.code, err: expected.message }, 'request failed');
      return { seq, error: expected };
    }
    o.log.error({ method, err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly');
    return { seq, error: { code: 'internal', message: `${method}: ${err instanceof Error ? err.message : String(err)}` } };
  }
}
