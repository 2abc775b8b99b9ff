import { SysruncError } from '../common/errors.ts';
import type { Transform } from './types.ts';

// A system container's root administers these; sharing the host's would hand it the host's.
const MUST_BE_PRIVATE = ['pid', 'ipc', 'uts', 'mount', 'network'] as const;

const DOCKER_FLAG: Record<(typeof MUST_BE_PRIVATE)[number], string> = {
  pid: '--pid host',
  ipc: '--ipc host',
  uts: '--uts host',
  mount: 'no mount namespace',
  network: '--network host',
};

/** Refuses host pid/ipc/uts/mount/network namespaces; adds a cgroup namespace. */
export const systemNamespaces: Transform = {
  name: 'system-namespaces',
  apply(spec, plan) {
    if (!plan.settings.systemContainer) return { spec, actions: [] };
    const namespaces = spec.linux?.namespaces ?? [];
    for (const type of MUST_BE_PRIVATE) {
      // A namespace joined by path (e.g. a pod's shared network) is fine unless it is the host's.
      if (plan.hostNamespaces.has(type)) {
        throw new SysruncError(
          `system container ${plan.containerId}: the ${type} namespace is the host's (${DOCKER_FLAG[type]}); system containers need their own (or, for a plain user-namespace container, the annotation io.sysrunc.syscont=false or the runtime flag --sysrunc-syscont=false)`,
        );
      }
    }
    if (namespaces.some((ns) => ns.type === 'cgroup')) return { spec, actions: [] };
    return { spec: { ...spec, linux: { ...spec.linux, namespaces: [...namespaces, { type: 'cgroup' }] } }, actions: [] };
  },
};
