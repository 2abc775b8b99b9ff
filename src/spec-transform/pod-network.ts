import type { Spec } from '../oci/spec.ts';
import type { Transform } from './types.ts';
import { isPodSandbox } from './pod-sandbox.ts';

/**
 * A Kubernetes pod's sandbox whose network namespace the CRI runtime made on the host and CNI set up
 * (a pinned file such as /var/run/netns/cni-...): the pod's app containers will join the sandbox's
 * user namespace and then its network namespace, and a network namespace owned by the host's user
 * namespace cannot be joined from inside another one (runc before 1.2 joins the user namespace
 * first). So the sandbox gets a network namespace of its own, owned by the pod's user namespace,
 * and a createRuntime hook moves CNI's interfaces, addresses and routes into it.
 */
export const podNetwork: Transform = {
  name: 'pod-network',
  apply(spec, plan) {
    if (plan.netnsHook === undefined || plan.userns.fromCaller || plan.userns.join !== undefined || !isPodSandbox(spec)) return { spec, actions: [] };
    const namespaces = spec.linux?.namespaces ?? [];
    const pinned = namespaces.find((ns) => ns.type === 'network')?.path;
    if (pinned === undefined || pinned === '' || pinned.startsWith('/proc/') || plan.hostNamespaces.has('network')) return { spec, actions: [] };
    const hook = { path: plan.netnsHook, args: ['sysrunc-adopt-netns', pinned] };
    const out: Spec = {
      ...spec,
      linux: { ...spec.linux, namespaces: namespaces.map((ns) => (ns.type === 'network' ? { type: 'network' } : ns)) },
      hooks: { ...spec.hooks, createRuntime: [...(spec.hooks?.createRuntime ?? []), hook] },
    };
    return { spec: out, actions: [] };
  },
};
