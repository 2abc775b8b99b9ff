// The tenant service's socket front: its handlers for the requests of tenants-api/v1.ts, served by
// the one RPC server (src/rpc/server.ts). Requests run concurrently.
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { TENANTS_API, TENANTS_API_VERSION, TenantError, type METHODS } from '../tenants-api/v1.ts';
import { createRpcServer, type Handlers } from '../rpc/server.ts';
import { SYSRUNC_VERSION } from '../common/version.ts';
import type { TenantRuntime } from './runtime.ts';
import { createNamespace, exec, inspect, list, listNamespaces, logs, remove, run } from './service.ts';

function tenantHandlers(rt: TenantRuntime, containerdAddress: string): Handlers<typeof METHODS> {
  return {
    ping: { run: () => ({ version: SYSRUNC_VERSION, apiVersion: TENANTS_API_VERSION, pid: process.pid, containerd: containerdAddress }) },
    createNS: { run: async (p) => (await createNamespace(rt, p.ns), {}) },
    listNS: { run: async () => ({ namespaces: await listNamespaces(rt) }) },
    run: { run: (p) => run(rt, p) },
    inspect: { run: (p) => inspect(rt, p) },
    delete: { run: async (p) => (await remove(rt, p), {}) },
    list: { run: (p) => list(rt, p) },
    exec: { run: (p) => exec(rt, p) },
    logs: { run: (p) => logs(rt, p) },
  };
}

export function createTenantServer(rt: TenantRuntime, containerdAddress: string, log: Logger): Server {
  return createRpcServer({
    api: TENANTS_API,
    handlers: tenantHandlers(rt, containerdAddress),
    log,
    expectedError: (err) => (err instanceof TenantError ? { code: err.code, message: err.message } : undefined),
  });
}
