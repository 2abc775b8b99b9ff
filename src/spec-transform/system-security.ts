import type { Transform } from './types.ts';

/** What a system container's root runs that a default profile forbids: mounts, namespaces, keyrings. */
export const SYSTEM_SYSCALLS = [
  'mount', 'umount', 'umount2', 'pivot_root', 'unshare', 'setns', 'clone', 'keyctl', 'add_key',
  'request_key', 'sethostname', 'setdomainname', 'open_tree', 'move_mount', 'fsopen', 'fsconfig',
  'fsmount', 'fspick', 'mount_setattr',
];

// Docker's default AppArmor profile denies mount; a system container must mount.
const MOUNT_DENYING_APPARMOR = /^docker-default$/;

/**
 * Keeps the caller's seccomp profile but allows the system-container syscalls (Docker's profile
 * allows them only with CAP_SYS_ADMIN, judged on the caps the caller asked for); drops AppArmor
 * profiles known to forbid mount.
 */
export const systemSecurity: Transform = {
  name: 'system-security',
  apply(spec, plan) {
    if (!plan.settings.systemContainer) return { spec, actions: [] };
    let out = spec;
    const seccomp = spec.linux?.seccomp;
    if (seccomp !== undefined && seccomp.defaultAction !== 'SCMP_ACT_ALLOW') {
      const syscalls = [...(seccomp.syscalls ?? []), { names: [...SYSTEM_SYSCALLS], action: 'SCMP_ACT_ALLOW' as const }];
      out = { ...out, linux: { ...out.linux, seccomp: { ...seccomp, syscalls } } };
    }
    if (out.process?.apparmorProfile !== undefined && MOUNT_DENYING_APPARMOR.test(out.process.apparmorProfile)) {
      const { apparmorProfile: _dropped, ...process } = out.process;
      out = { ...out, process };
    }
    return { spec: out, actions: [] };
  },
};
