// The tenant service's socket front: validates each request against tenants-api/v1.ts and
// dispatches it. Requests run concurrently; only root may connect (containers run as root's).
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { METHODS, Request, TENANTS_API_VERSION, TenantError, type MethodName, type Params } from '../tenants-api/v1.ts';
import { socketPeerCred } from '../host/peer-cred.ts';
import { SYSRUNC_VERSION } from '../version.ts';
import type { TenantRuntime } from './runtime.ts';
import { createNamespace, exec, inspect, list, listNamespaces, logs, remove, run } from './service.ts';

const MAX_LINE = 2 << 20;

export function createTenantServer(rt: TenantRuntime, containerdAddress: string, log: Logger): Server {
  return createServer((socket) => {
    let uid: number;
    try {
      uid = socketPeerCred(socket).uid;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot tell the peer of a connection; closed');
      socket.destroy();
      return;
    }
    if (uid !== 0) {
      socket.end(`${JSON.stringify({ seq: -1, error: { code: 'invalid-request', message: `peer uid ${uid}: only root may use sysrunc-tenantd` } })}\n`);
      return;
    }
    serve(socket, rt, containerdAddress, log);
  });
}

function serve(socket: Socket, rt: TenantRuntime, address: string, log: Logger): void {
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
      void handle(line, rt, address, log, write);
    }
  });
  socket.on('error', () => socket.destroy());
}

async function handle(line: string, rt: TenantRuntime, address: string, log: Logger, write: (msg: unknown) => void): Promise<void> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return write({ seq: -1, error: { code: 'invalid-request', message: 'request is not valid JSON' } });
  }
  const request = Request.safeParse(json);
  if (!request.success) return write({ seq: -1, error: { code: 'invalid-request', message: `request does not match the v${TENANTS_API_VERSION} envelope` } });
  const { seq, method, params } = request.data;
  if (!Object.hasOwn(METHODS, method)) return write({ seq, error: { code: 'invalid-request', message: `unknown method "${method}"` } });
  const name = method as MethodName;
  const parsed = METHODS[name].params.safeParse(params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return write({ seq, error: { code: 'invalid-request', message: `${method}: /${issue?.path.join('/') ?? ''}: ${issue?.message ?? 'invalid'}` } });
  }
  try {
    write({ seq, result: await dispatch(rt, address, name, parsed.data) });
  } catch (err) {
    if (err instanceof TenantError) {
      log.info({ method, code: err.code, err: err.message }, 'request failed');
      return write({ seq, error: { code: err.code, message: err.message } });
    }
    log.error({ method, err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly');
    write({ seq, error: { code: 'internal', message: `${method}: ${err instanceof Error ? err.message : String(err)}` } });
  }
}

async function dispatch(rt: TenantRuntime, address: string, method: MethodName, params: unknown): Promise<unknown> {
  const p = <M extends MethodName>(): Params<M> => params as Params<M>;
  switch (method) {
    case 'ping':
      return { version: SYSRUNC_VERSION, apiVersion: TENANTS_API_VERSION, pid: process.pid, containerd: address };
    case 'createNS':
      await createNamespace(rt, p<'createNS'>().ns);
      return {};
    case 'listNS':
      return { namespaces: await listNamespaces(rt) };
    case 'run':
      return run(rt, p<'run'>());
    case 'inspect':
      return inspect(rt, p<'inspect'>());
    case 'delete':
      await remove(rt, p<'delete'>());
      return {};
    case 'list':
      return list(rt, p<'list'>());
    case 'exec':
      return exec(rt, p<'exec'>());
    case 'logs':
      return logs(rt, p<'logs'>());
  }
}
