import type { Mount } from '../oci/spec.ts';
import type { Transform } from './types.ts';

const SYSTEMD_TMPFS: readonly Mount[] = [
  { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'size=65536k'] },
  { destination: '/run/lock', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'size=4096k'] },
];

/** systemd as init wants tmpfs on /run and /run/lock and `container=` in its environment. */
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
    const env = spec.process?.env ?? [];
    const withContainer = env.some((e) => e.startsWith('container=')) ? env : [...env, 'container=sysrunc'];
    return { spec: { ...spec, mounts, process: { cwd: '/', ...spec.process, env: withContainer } }, actions: [] };
  },
};
