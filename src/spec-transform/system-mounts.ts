import type { Mount, Spec } from '../oci/spec.ts';
import type { Transform } from './types.ts';

// /proc/sys subtrees whose sysctls are host-global. Writes there fail anyway (their files belong to
// the host's root, unmapped in the container), the read-only mounts make that explicit. /proc/sys/net
// is left writable: it belongs to the container's own network namespace, and an inner dockerd
// must set net.ipv4.ip_forward and friends.
const HOST_GLOBAL_SYSCTL_DIRS = ['/proc/sys/kernel', '/proc/sys/vm', '/proc/sys/fs', '/proc/sys/dev', '/proc/sys/debug', '/proc/sys/abi', '/proc/sys/user', '/proc/sys/crypto'];

/**
 * The mounts a system container needs: its cgroup tree writable (an inner dockerd or systemd makes
 * cgroups), sysfs and proc present, /dev/kmsg bound to /dev/null (systemd and kubelet write there),
 * and /proc/sys read-only only where sysctls are host-global.
 */
export const systemMounts: Transform = {
  name: 'system-mounts',
  apply(spec, plan) {
    if (!plan.settings.systemContainer) return { spec, actions: [] };
    let mounts = [...(spec.mounts ?? [])];
    mounts = ensureMount(mounts, { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
    mounts = ensureMount(mounts, { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    mounts = ensureMount(mounts, { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime'] });
    mounts = mounts.map((m) => (m.destination === '/sys/fs/cgroup' && m.type === 'cgroup' ? { ...m, options: withoutReadOnly(m.options) } : m));
    if (spec.root?.readonly === true) {
      // A read-only system container still needs somewhere to keep runtime state.
      mounts = ensureMount(mounts, { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755'] });
      mounts = ensureMount(mounts, { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
    }
    if (!mounts.some((m) => m.destination === '/dev/kmsg')) {
      mounts.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/null', options: ['rbind', 'rw'] });
    }
    // Kernel filesystems a user namespace may not mount (debugfs, tracefs, configfs, fusectl,
    // hugetlbfs): an empty read-only tmpfs in their place, so that systemd finds them mounted
    // instead of failing their mount units (a stock image would boot "degraded"), and the host's
    // are not seen through a bind of /sys.
    for (const dir of plan.kernelFsDirs) {
      mounts = ensureMount(mounts, { destination: dir, type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'nodev', 'noexec', 'mode=555', 'size=0'] });
    }
    const linux = { ...spec.linux };
    if (linux.readonlyPaths?.includes('/proc/sys')) {
      linux.readonlyPaths = linux.readonlyPaths.flatMap((p) => (p === '/proc/sys' ? HOST_GLOBAL_SYSCTL_DIRS : [p]));
    }
    const out: Spec = { ...spec, mounts, linux };
    return { spec: out, actions: [] };
  },
};

function ensureMount(mounts: Mount[], mount: Mount): Mount[] {
  return mounts.some((m) => m.destination === mount.destination) ? mounts : [...mounts, mount];
}

function withoutReadOnly(options: readonly string[] | undefined): string[] {
  return [...(options ?? []).filter((o) => o !== 'ro'), 'rw'].filter((o, i, all) => all.indexOf(o) === i);
}
