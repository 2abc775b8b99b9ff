import type { Mount } from '../oci/spec.ts';
import type { Transform } from './types.ts';

const SYSTEMD_TMPFS: readonly Mount[] = [
  { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'size=65536k'] },
  { destination: '/run/lock', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'size=4096k'] },
];

/** The journald drop-in sysrunc ships in config/ (ReadKMsg=no), and where the container gets it. */
export const JOURNALD_CONFIG_FILE = 'journald-sysrunc-kmsg.conf';
export const JOURNALD_CONFIG_TARGET = `/run/systemd/journald.conf.d/50-sysrunc-kmsg.conf`;

/**
 * systemd as init wants tmpfs on /run and /run/lock and `container=` in its environment. Where
 * /dev/kmsg is system-mounts' /dev/null stand-in, journald is told not to read it: /dev/null
 * cannot be polled, and journald 262 exits on that (Debian sid's systemd-journald.service failed).
 */
export const systemdInit: Transform = {
  name: 'systemd',
  apply(spec, plan) {
    const wanted = plan.settings.systemd === 'true' || (plan.settings.systemd === 'auto' && plan.systemdInit);
    if (!wanted) return { spec, actions: [] };
    const mounts = [...(spec.mounts ?? [])];
    for (const tmpfs of SYSTEMD_TMPFS) {
      // A mount the caller set there (e.g. --tmpfs /run) wins.
      if (!mounts.some((m) => m.destination === tmpfs.destination)) mounts.push({ ...tmpfs, options: [...(tmpfs.options ?? [])] });
    }
    const kmsgIsNull = mounts.some((m) => m.destination === '/dev/kmsg' && m.source === '/dev/null');
    const runIsTmpfs = mounts.some((m) => m.destination === '/run' && m.type === 'tmpfs');
    // Only onto a tmpfs /run: runc makes the drop-in's directory there, never in the image or a bind.
    if (plan.journaldConfig !== undefined && kmsgIsNull && runIsTmpfs && !mounts.some((m) => m.destination === JOURNALD_CONFIG_TARGET)) {
      mounts.push({ destination: JOURNALD_CONFIG_TARGET, type: 'bind', source: plan.journaldConfig, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
    }
    const env = spec.process?.env ?? [];
    const withContainer = env.some((e) => e.startsWith('container=')) ? env : [...env, 'container=sysrunc'];
    return { spec: { ...spec, mounts, process: { cwd: '/', ...spec.process, env: withContainer } }, actions: [] };
  },
};
