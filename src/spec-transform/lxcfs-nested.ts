import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Seccomp } from '../oci/spec.ts';
import type { Transform } from './types.ts';

/** The directory of the listeners' sockets under the manager's run base. */
export const MOUNT_LISTENER_SOCKETS_DIR_NAME = 'listeners';

/**
 * The listener's log, in its directory under the container's run dir (<run-base>/containers/<id>),
 * and its socket: a unix socket path must fit in 108 bytes, which a 64-character container id under
 * the run dir does not, so sockets live in <run-base>/listeners/, named by a hash of the id.
 */
export function mountListenerPaths(runDir: string): { readonly dir: string; readonly log: string; readonly socketDir: string; readonly socket: string } {
  const dir = path.join(runDir, 'mount-listener');
  const socketDir = path.join(path.dirname(path.dirname(runDir)), MOUNT_LISTENER_SOCKETS_DIR_NAME);
  const name = createHash('sha256').update(path.basename(runDir)).digest('hex').slice(0, 20);
  return { dir, log: path.join(dir, 'listener.log'), socketDir, socket: path.join(socketDir, `${name}.sock`) };
}

/** `<host file>=<procfs name>` for each lxcfs file under /proc: the listener's arguments. */
export function mountListenerFiles(files: readonly { readonly destination: string; readonly source: string }[]): string[] {
  return files.filter((f) => path.dirname(f.destination) === '/proc').map((f) => `${f.source}=${path.basename(f.destination)}`);
}

/**
 * Containers an inner runtime starts (an inner dockerd's) mount their own procfs; for them to see
 * lxcfs's figures too, every mount(2) in the system container is sent to sysrunc's mount listener
 * (src/manager/native/mount-listener.c), which lets all but procfs mounts continue and binds lxcfs's
 * files over each new procfs. The caller's profile is kept (mount's allow rules give way to the
 * notification); a config with no profile gets one that allows everything else. A config that
 * already names a listener of its own, or whose profile denies or filters mount, keeps it as it
 * is, without nested figures.
 */
export const lxcfsNested: Transform = {
  name: 'lxcfs-nested',
  apply(spec, plan) {
    const s = plan.settings;
    if (!s.systemContainer || !s.lxcfs || !s.lxcfsNested || plan.lxcfs?.mountListener === undefined) return { spec, actions: [] };
    const current = spec.linux?.seccomp;
    if (current?.listenerPath !== undefined) return { spec, actions: [] };
    const rules = current?.syscalls ?? [];
    // A profile that denies or filters mount keeps its decision (the notification would replace it).
    if (rules.some((rule) => rule.names.includes('mount') && (rule.action !== 'SCMP_ACT_ALLOW' || (rule.args ?? []).length > 0))) return { spec, actions: [] };
    const others = rules
      .map((rule) => ({ ...rule, names: rule.names.filter((name) => name !== 'mount') }))
      .filter((rule) => rule.names.length > 0);
    const seccomp: Seccomp = {
      ...(current ?? { defaultAction: 'SCMP_ACT_ALLOW' }),
      listenerPath: mountListenerPaths(plan.runDir).socket,
      syscalls: [...others, { names: ['mount'], action: 'SCMP_ACT_NOTIFY' }],
    };
    return { spec: { ...spec, linux: { ...spec.linux, seccomp } }, actions: [] };
  },
};
