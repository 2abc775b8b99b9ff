// The depot daemon's socket front: validates each request against depot-api/v1.ts and dispatches
// it. Requests run concurrently (a wait or an attach can last as long as its process); per
// container, create and destroy are kept apart by the depot dir itself (mkdir, then rm).
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { DEPOT_API_VERSION, DepotError, METHODS, Request, type MethodName, type Params } from '../depot-api/v1.ts';
import { socketPeerCred } from '../host/peer-cred.ts';
import { SYSRUNC_VERSION } from '../version.ts';
import { containerInfo, createContainer, destroyContainer, type DepotRuntime } from './containers.ts';
import { attachProcess, control, forgetProcess, listProcesses, startProcess, waitProcess, writeStdin } from './tracker.ts';

const MAX_LINE = 2 << 20;

export function createDepotServer(rt: DepotRuntime, log: Logger): Server {
  return createServer((socket) => {
    let uid: number;
    try {
      uid = socketPeerCred(socket).uid;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot tell the peer of a connection; closed');
      socket.destroy();
      return;
    }
    // Containers run as root's: only root may drive them.
    if (uid !== 0) {
      socket.end(`${JSON.stringify({ seq: -1, error: { code: 'invalid-request', message: `peer uid ${uid}: only root may use sysrunc-depotd` } })}\n`);
      return;
    }
    serve(socket, rt, log);
  });
}

function serve(socket: Socket, rt: DepotRuntime, log: Logger): void {
  const gone = new AbortController();
  const write = (msg: unknown): void => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`);
  };
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_LINE && !buffer.includes('\n')) return socket.destroy();
    let newline;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      void handle(line, rt, log, write, gone.signal);
    }
  });
  socket.on('close', () => gone.abort());
  socket.on('error', () => socket.destroy());
}

async function handle(line: string, rt: DepotRuntime, log: Logger, write: (msg: unknown) => void, abort: AbortSignal): Promise<void> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return write({ seq: -1, error: { code: 'invalid-request', message: 'request is not valid JSON' } });
  }
  const request = Request.safeParse(json);
  if (!request.success) return write({ seq: -1, error: { code: 'invalid-request', message: `request does not match the v${DEPOT_API_VERSION} envelope` } });
  const { seq, method, params } = request.data;
  if (!Object.hasOwn(METHODS, method)) return write({ seq, error: { code: 'invalid-request', message: `unknown method "${method}"` } });
  const name = method as MethodName;
  const parsed = METHODS[name].params.safeParse(params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return write({ seq, error: { code: 'invalid-request', message: `${method}: /${issue?.path.join('/') ?? ''}: ${issue?.message ?? 'invalid'}` } });
  }
  try {
    const result = await dispatch(rt, name, parsed.data, (event) => write({ seq, event }), abort);
    write({ seq, result });
  } catch (err) {
    if (err instanceof DepotError) {
      log.info({ method, code: err.code, err: err.message }, 'request failed');
      return write({ seq, error: { code: err.code, message: err.message } });
    }
    log.error({ method, err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly');
    write({ seq, error: { code: 'internal', message: `${method}: ${err instanceof Error ? err.message : String(err)}` } });
  }
}

async function dispatch(rt: DepotRuntime, method: MethodName, params: unknown, event: (e: unknown) => void, abort: AbortSignal): Promise<unknown> {
  const p = <M extends MethodName>(): Params<M> => params as Params<M>;
  switch (method) {
    case 'ping':
      return { version: SYSRUNC_VERSION, apiVersion: DEPOT_API_VERSION, pid: process.pid, depot: rt.depot.root };
    case 'create':
      return createContainer(rt, p<'create'>());
    case 'destroy':
      return destroyContainer(rt, p<'destroy'>().id);
    case 'list':
      return { containers: await Promise.all(rt.depot.containers().map((id) => containerInfo(rt, id))) };
    case 'exec':
      return startProcess(rt, p<'exec'>());
    case 'ps':
      return { processes: listProcesses(rt, p<'ps'>().container) };
    case 'wait':
      return { exitCode: await waitProcess(rt, p<'wait'>(), abort) };
    case 'forget': {
      const s = p<'forget'>();
      forgetProcess(rt, s.container, s.process);
      return {};
    }
    case 'signal': {
      const s = p<'signal'>();
      await control(rt, s.container, s.process, `k ${s.signal}`);
      return {};
    }
    case 'stdin':
      await writeStdin(rt, p<'stdin'>());
      return {};
    case 'closeStdin': {
      const s = p<'closeStdin'>();
      await control(rt, s.container, s.process, 'c').catch(ignoreEnded);
      return {};
    }
    case 'resize': {
      const s = p<'resize'>();
      await control(rt, s.container, s.process, `w ${s.rows} ${s.cols}`).catch(ignoreEnded);
      return {};
    }
    case 'attach':
      return { exitCode: await attachProcess(rt, p<'attach'>(), event, abort) };
  }
}

/** Closing the input of, or resizing, a process that has ended is done already: not an error. */
function ignoreEnded(err: unknown): void {
  if (err instanceof DepotError && err.code === 'exited') return;
  throw err;
}
