import type { Mount, Spec } from '../oci/spec.ts';
import type { Transform, UsernsPlan } from './types.ts';

/** Adds a user namespace mapping container root to the allocated host range. */
export const userNamespace: Transform = {
  name: 'user-namespace',
  apply(spec, plan) {
    if (plan.userns.fromCaller) return { spec, actions: [] };
    const linux = { ...spec.linux };
    const namespaces = (linux.namespaces ?? []).filter((ns) => ns.type !== 'user');
    linux.namespaces = [...namespaces, plan.userns.join === undefined ? { type: 'user' } : { type: 'user', path: plan.userns.join.path }];
    linux.uidMappings = plan.userns.uidMappings.map((m) => ({ ...m }));
    linux.gidMappings = plan.userns.gidMappings.map((m) => ({ ...m }));
    // sysfs may only be mounted by the user namespace owning the network namespace; with the
    // host's network (or another container's) a read-only bind of /sys is the most there can be.
    // A network namespace joined together with its owner's user namespace is administered by it.
    const joinsOwnedNetwork = plan.userns.join?.types.includes('network') === true;
    const joinsOtherNetwork = !joinsOwnedNetwork && linux.namespaces.some((ns) => ns.type === 'network' && ns.path);
    const ownsNetwork = !plan.hostNamespaces.has('network') && !joinsOtherNetwork;
    const pingRange = linux.sysctl?.[PING_GROUP_RANGE];
    if (pingRange !== undefined && ownsNetwork) {
      linux.sysctl = { ...linux.sysctl, [PING_GROUP_RANGE]: clampGroupRange(pingRange, plan.userns.gidMappings) };
    } else if (pingRange !== undefined && joinsOtherNetwork && !plan.hostNamespaces.has('network') && !namesAnyOf(pingRange, plan.userns.gidMappings)) {
      // podman's network namespace (netavark's, by path) belongs to the host's user namespace: the
      // kernel refuses this write from the container's, and the range (host gids there, podman's
      // default "0 0") names none of the container's gids, so it grants its processes nothing.
      const { [PING_GROUP_RANGE]: _dropped, ...rest } = linux.sysctl ?? {};
      linux.sysctl = rest;
    }
    const mounts = ownsNetwork || spec.mounts === undefined ? spec.mounts : spec.mounts.map(sysfsAsBind);
    const out: Spec = { ...spec, linux, ...(mounts === undefined ? {} : { mounts }) };
    return { spec: out, actions: [] };
  },
};

function sysfsAsBind(mount: Mount): Mount {
  if (mount.type !== 'sysfs') return mount;
  return { destination: mount.destination, type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
}

// Docker sets "0 2147483647" for every container with its own network namespace; inside a user
// namespace the kernel refuses gids that are not mapped (EINVAL), so the range is cut to the mapped one.
const PING_GROUP_RANGE = 'net.ipv4.ping_group_range';

/** A ping_group_range value's two gids, or undefined where it is not two integers (then runc judges it). */
function groupRange(value: string): { low: number; high: number } | undefined {
  const [low, high] = value.trim().split(/\s+/).map(Number);
  if (low === undefined || high === undefined || !Number.isInteger(low) || !Number.isInteger(high)) return undefined;
  return { low, high };
}

function clampGroupRange(value: string, gidMappings: UsernsPlan['gidMappings']): string {
  const range = groupRange(value);
  if (range === undefined) return value;
  const top = Math.max(...gidMappings.map((m) => m.containerID + m.size - 1));
  return `${Math.min(range.low, top)} ${Math.min(range.high, top)}`;
}

/** Whether a ping_group_range value (host gids, in a network namespace the host's user namespace owns) covers any gid the container's mappings give it. */
function namesAnyOf(value: string, gidMappings: UsernsPlan['gidMappings']): boolean {
  const range = groupRange(value);
  if (range === undefined) return true;
  return gidMappings.some((m) => m.hostID <= range.high && range.low <= m.hostID + m.size - 1);
}

/** The user namespace a config asks for itself, if it carries its own mappings. */
export function callerUserns(spec: Spec): { uidMappings: NonNullable<NonNullable<Spec['linux']>['uidMappings']>; gidMappings: NonNullable<NonNullable<Spec['linux']>['gidMappings']> } | undefined {
  const ns = spec.linux?.namespaces?.find((n) => n.type === 'user');
  if (ns === undefined) return undefined;
  const uidMappings = spec.linux?.uidMappings ?? [];
  const gidMappings = spec.linux?.gidMappings ?? [];
  return { uidMappings, gidMappings };
}
