// The manager's socket front: its handlers for the requests of manager-api/v1.ts, served by the
// one RPC server (src/rpc/server.ts). Requests run one at a time (SerialQueue), in arrival order.
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { MANAGER_API, type METHODS } from '../manager-api/v1.ts';
import { createRpcServer, type Handlers } from '../rpc/server.ts';
import { SerialQueue } from '../rpc/serial-queue.ts';
import { ServiceError, type ManagerService } from './service.ts';
import { answerPrepareCall } from './prepare-call.ts';
import { answerDeleteCall, deleteCallContainerId } from './delete-call.ts';

export { SerialQueue };

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
      // answering "not found" before it is done would let dockerd remove the layer.
      waitFirst: (p) => service.settled(p.id),
    },
    deleteCall: {
      run: (p) => answerDeleteCall({ release: (params) => service.release(params), unexpected: (err) => log?.error({ method: 'deleteCall', err: err instanceof Error ? err.stack : String(err) }, 'request failed unexpectedly') }, p),
      // As release's.
      waitFirst: async (p) => {
        const id = deleteCallContainerId(p);
        if (id !== undefined) await service.settled(id);
      },
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
