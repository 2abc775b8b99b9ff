// Restarts: containerd's TaskExit events (all namespaces) for a container of the service that
// nobody is deleting restart its task after a back-off, up to maxRestarts; then the container is
// labelled failed (with why) and its task removed so sysrunc frees its range. The count lives in a
// label, so a restarted service continues it; on start (and after losing the event stream) it
// reconciles: every container without a running task is treated as exited.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { isNotFound, type ContainerRecord } from './containerd-client.ts';
import { decodeTaskExit } from './containerd-protos.ts';
import type { Envelope__Output } from './containerd-api/generated/types/containerd/services/events/v1/Envelope.ts';
import { key, type RestartPolicy, type TenantRuntime } from './runtime.ts';
import { LABELS } from './spec.ts';
import { createAndStartTask } from './tasks.ts';

const BUSY_RETRY_MS = 500;

export function backoffMs(policy: RestartPolicy, restartsSoFar: number): number {
  return Math.min(policy.baseDelayMs * 2 ** restartsSoFar, policy.maxDelayMs);
}

async function setLabels(rt: TenantRuntime, ns: string, c: ContainerRecord, labels: Record<string, string>): Promise<void> {
  await rt.ctrd.call('containers', 'Update', ns, { container: { id: c.id, labels }, update_mask: { paths: ['labels'] } });
}

export class Supervisor {
  private stream: ClientReadableStream<Envelope__Output> | undefined;
  private stopped = false;

  constructor(private readonly rt: TenantRuntime) {}

  async start(): Promise<void> {
    this.subscribe();
    await this.reconcile();
  }

  stop(): void {
    this.stopped = true;
    this.stream?.cancel();
  }

  private subscribe(): void {
    const s = this.rt.ctrd.stream('events', 'Subscribe', undefined, { filters: ['topic=="/tasks/exit"'] });
    this.stream = s;
    s.on('data', (envelope: Envelope__Output) => {
      const exit = decodeTaskExit(envelope.event);
      if (exit === undefined) return;
      // Exits of exec processes carry their own id; only the init's (id = container id) counts.
      if (exit.id !== exit.container_id) return;
      void this.onExit(envelope.namespace, exit.container_id, exit.exit_status);
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.stopped) return;
      this.rt.log.warn('containerd event stream ended: resubscribing and reconciling');
      setTimeout(() => {
        if (this.stopped) return;
        this.subscribe();
        void this.reconcile();
      }, 1000);
    });
  }

  private async taskLive(ns: string, id: string): Promise<boolean> {
    try {
      const status = (await this.rt.ctrd.call('tasks', 'Get', ns, { container_id: id })).process?.status;
      return status === 'RUNNING' || status === 'PAUSED' || status === 'CREATED';
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Every container of the service without a live task, in every namespace, is handled as exited. */
  async reconcile(): Promise<void> {
    try {
      const namespaces = (await this.rt.ctrd.call('namespaces', 'List', undefined, {})).namespaces;
      for (const n of namespaces) {
        const ns = n.name;
        const containers = (await this.rt.ctrd.call('containers', 'List', ns, {})).containers;
        for (const c of containers) {
          const labels = c.labels;
          if (labels[LABELS.managed] !== '1' || labels[LABELS.failed] !== undefined) continue;
          if (!(await this.taskLive(ns, c.id))) void this.onExit(ns, c.id, -1);
        }
      }
    } catch (err) {
      this.rt.log.error({ err: err instanceof Error ? err.message : String(err) }, 'reconcile failed');
    }
  }

  private async onExit(ns: string, id: string, status: number): Promise<void> {
    const k = key(ns, id);
    if (this.stopped) return;
    if (this.rt.busy.has(k)) {
      // A Run, Delete or restart under way: look again once it is done (a Delete leaves nothing).
      setTimeout(() => void this.onExit(ns, id, status), BUSY_RETRY_MS).unref();
      return;
    }
    this.rt.busy.add(k);
    try {
      for (;;) {
        let c: ContainerRecord | null;
        try {
          c = (await this.rt.ctrd.call('containers', 'Get', ns, { id })).container;
        } catch (err) {
          if (isNotFound(err)) return;
          throw err;
        }
        if (c === null) return;
        const labels = { ...c.labels };
        if (labels[LABELS.managed] !== '1' || labels[LABELS.failed] !== undefined) return;
        // An exit seen late (after a restart or a Run that was under way) of a task that runs now.
        if (await this.taskLive(ns, id)) return;
        const restarts = Number(labels[LABELS.restarts] ?? '0');
        // The dead task goes first: the shim runs `sysrunc delete`, which frees the range.
        await this.rt.ctrd.call('tasks', 'Delete', ns, { container_id: id }, 60_000).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
        if (restarts >= this.rt.restart.maxRestarts) {
          labels[LABELS.failed] = `exited (status ${status}) after ${restarts} restarts`;
          await setLabels(this.rt, ns, c, labels);
          this.rt.log.warn({ ns, id, status, restarts }, 'gave up restarting: failed');
          return;
        }
        const delay = backoffMs(this.rt.restart, restarts);
        this.rt.log.info({ ns, id, status, restarts, delay }, 'task exited: restarting after back-off');
        await sleep(delay);
        // A Delete may have come during the back-off: it does not wait for a restart.
        try {
          await this.rt.ctrd.call('containers', 'Get', ns, { id });
        } catch (err) {
          if (isNotFound(err)) return;
          throw err;
        }
        labels[LABELS.restarts] = String(restarts + 1);
        await setLabels(this.rt, ns, c, labels);
        try {
          await createAndStartTask(this.rt, ns, id);
          return;
        } catch (err) {
          this.rt.log.warn({ ns, id, err: err instanceof Error ? err.message : String(err) }, 'restart failed');
          status = -1;
        }
      }
    } catch (err) {
      this.rt.log.error({ ns, id, err: err instanceof Error ? err.message : String(err) }, 'restart handling failed');
    } finally {
      this.rt.busy.delete(k);
    }
  }
}
