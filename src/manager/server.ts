// The manager's socket front: its handlers for the requests of manager-api/v1.ts, served by the
// one RPC server (src/rpc/server.ts). Requests run one at a time (SerialQueue), in arrival order.
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { MANAGER_API, type METHODS } from '../manager-api/v1.ts';
import { createRpcServer, type Handlers } from '../rpc/server.ts';
import { SerialQueue } from '../rpc/serial-queue.ts';
import { ServiceError, type ManagerService } from './service.ts';
import { answerPrepareCall } from './prepare-call.ts';
import { answerDeleteCall, answerDeleteCallUnqueued, deleteCallContainerId } from './delete-call.ts';

export { SerialQueue };

/**
 * ServiceOptions.afterRequest: fn as a task of the queue, after the ones waiting already. Its
 * first step waits for the event loop once, so a request that arrived meanwhile is read first (a
 * delete whose answer needs no turn in the queue gets it before fn starts).
 */
export function queueAfterRequest(queue: SerialQueue): (fn: () => Promise<void>) => Promise<void> {
  return (fn) =>
    queue.run(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await fn();
    });
}

export function managerHandlers(service: ManagerService, log?: Logger): Handlers<typeof METHODS> {
  return {
    ping: { run: () => service.ping() },
    prepare: { run: (p) => service.prepare(p) },
    prepareCall: {
      run: (p) => answerPrepareCall({ prepare: (params) => service.prepare(params), unexpected: (err) => log?.error({ method: 'prepareCall', err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly') }, p),
    },
    register: { run: (p) => service.register(p) },
    apply: { run: (p) => service.apply(p) },
    release: {
      run: (p) => service.release(p),
      // A release under way may have stepped out of the queue (a store volume's sync-out):
      // answering "not found" before the engine's part is done would let dockerd remove the layer.
      waitFirst: (p) => service.engineSettled(p.id),
      // The engine's part done, the run dir's part queued: released as far as the caller can tell.
      answerUnqueued: (p) => {
        const released = service.engineReleased(p.id, p.runtimeRoot);
        return released === undefined ? undefined : { found: true, bundle: released.bundle };
      },
    },
    deleteCall: {
      run: (p) => answerDeleteCall({ release: (params) => service.release(params), unexpected: (err) => log?.error({ method: 'deleteCall', err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly') }, p),
      // As release's.
      waitFirst: async (p) => {
        const id = deleteCallContainerId(p);
        if (id !== undefined) await service.engineSettled(id);
      },
      answerUnqueued: (p) => answerDeleteCallUnqueued((id, runtimeRoot) => service.engineReleased(id, runtimeRoot) !== undefined, p),
    },
    list: { run: () => service.list() },
    status: { run: () => service.status() },
    sweep: {
      run: async () => ({ released: await service.sweepOrphans() }),
      waitFirst: () => service.allSettled(),
    },
  };
}

export function createManagerServer(service: ManagerService, log: Logger, queue = new SerialQueue()): Server {
  return createRpcServer({
    api: MANAGER_API,
    handlers: managerHandlers(service, log),
    log,
    queue,
    maxLineBytes: 1 << 20,
    expectedError: (err) => (err instanceof ServiceError ? { code: err.code, message: err.message } : undefined),
  });
}
