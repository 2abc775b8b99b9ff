// The depot daemon's socket front: its handlers for the requests of depot-api/v1.ts, served by the
// one RPC server (src/rpc/server.ts). Requests run concurrently (a wait or an attach can last as
// long as its process); per container, create and destroy are kept apart by the depot dir itself
// (mkdir, then rm).
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { DEPOT_API, DEPOT_API_VERSION, DepotError, type METHODS } from '../depot-api/v1.ts';
import { createRpcServer, type Handlers } from '../rpc/server.ts';
import { SYSRUNC_VERSION } from '../common/version.ts';
import { containerInfo, createContainer, destroyContainer } from './containers.ts';
import type { DepotRuntime } from './runtime.ts';
import { attachProcess, control, forgetProcess, listProcesses, startProcess, waitProcess, writeStdin } from './tracker.ts';

function depotHandlers(rt: DepotRuntime): Handlers<typeof METHODS> {
  return {
    ping: { run: () => ({ version: SYSRUNC_VERSION, apiVersion: DEPOT_API_VERSION, pid: process.pid, depot: rt.depot.root }) },
    create: { run: (p) => createContainer(rt, p) },
    destroy: { run: (p) => destroyContainer(rt, p.id) },
    list: { run: async () => ({ containers: await Promise.all(rt.depot.containers().map((id) => containerInfo(rt, id))) }) },
    exec: { run: (p) => startProcess(rt, p) },
    ps: { run: (p) => ({ processes: listProcesses(rt, p.container) }) },
    wait: { run: async (p, call) => ({ exitCode: await waitProcess(rt, p, call.abort) }) },
    forget: {
      run: (p) => {
        forgetProcess(rt, p.container, p.process);
        return {};
      },
    },
    signal: { run: async (p) => (await control(rt, p.container, p.process, `k ${p.signal}`), {}) },
    stdin: { run: async (p) => (await writeStdin(rt, p), {}) },
    closeStdin: { run: async (p) => (await control(rt, p.container, p.process, 'c').catch(ignoreEnded), {}) },
    resize: { run: async (p) => (await control(rt, p.container, p.process, `w ${p.rows} ${p.cols}`).catch(ignoreEnded), {}) },
    attach: { run: async (p, call) => ({ exitCode: await attachProcess(rt, p, (event) => call.event(event), call.abort) }) },
  };
}

export function createDepotServer(rt: DepotRuntime, log: Logger): Server {
  return createRpcServer({
    api: DEPOT_API,
    handlers: depotHandlers(rt),
    log,
    expectedError: (err) => (err instanceof DepotError ? { code: err.code, message: err.message } : undefined),
  });
}

/** Closing the input of, or resizing, a process that has ended is done already: not an error. */
function ignoreEnded(err: unknown): void {
  if (err instanceof DepotError && err.code === 'exited') return;
  throw err;
}
