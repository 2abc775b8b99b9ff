// The OCI configs the depot writes: a container whose PID 1 is the keep-alive init, and the process
// specs of `runc exec --process`. sysrunc's manager adds the user and cgroup namespaces, the
// system-container capabilities and the ownership on top (the config here is runc's own defaults).
import { defaultMounts } from '../oci/default-mounts.ts';
import type { Params, ProcessSpec } from '../depot-api/v1.ts';

/** Where the init is bind-mounted: in /dev, a tmpfs runc makes, so the rootfs is never written. */
export const INIT_IN_CONTAINER = '/dev/.sysrunc-depot-init';

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export interface OciProcess {
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  user: { uid: number; gid: number };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: Record<'bounding' | 'effective' | 'permitted', string[]>;
  rlimits: { type: string; hard: number; soft: number }[];
  noNewPrivileges: boolean;
}

/** The CFS period a `cpu` limit's quota is counted in (the tenant service's too). */
const CPU_PERIOD = 100_000;

/** Devices denied as runc's defaults; `cpu` and `memory` as a quota and a limit (lxcfs shows them). */
function resources(p: Params<'create'>): Record<string, unknown> {
  return {
    devices: [{ allow: false, access: 'rwm' }],
    ...(p.cpu === undefined ? {} : { cpu: { quota: Math.round(p.cpu * CPU_PERIOD), period: CPU_PERIOD } }),
    ...(p.memory === undefined ? {} : { memory: { limit: p.memory } }),
  };
}

export function containerConfig(p: Params<'create'>, initPath: string): Record<string, unknown> {
  const caps = { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS };
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [INIT_IN_CONTAINER],
      env: [DEFAULT_PATH],
      cwd: '/',
      capabilities: caps,
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: p.rootfs, readonly: p.readonlyRootfs ?? false },
    hostname: p.hostname ?? p.id,
    mounts: [
      ...defaultMounts(),
      { destination: INIT_IN_CONTAINER, type: 'bind', source: initPath, options: ['bind', 'ro', 'nosuid', 'nodev'] },
      ...(p.mounts ?? []).map((m) => ({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', m.readOnly === true ? 'ro' : 'rw'] })),
    ],
    annotations: p.annotations ?? {},
    linux: {
      resources: resources(p),
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** The spec of `runc exec --process`; sysrunc grants the system container's capabilities on top. */
export function processConfig(spec: ProcessSpec): OciProcess {
  const env = spec.env ?? [];
  const tty = spec.tty ?? false;
  return {
    terminal: tty,
    ...(tty ? { consoleSize: { height: spec.rows ?? 24, width: spec.cols ?? 80 } } : {}),
    user: { uid: spec.uid ?? 0, gid: spec.gid ?? 0 },
    args: spec.args,
    env: [...(env.some((e) => e.startsWith('PATH=')) ? [] : [DEFAULT_PATH]), ...(tty && !env.some((e) => e.startsWith('TERM=')) ? ['TERM=xterm'] : []), ...env],
    cwd: spec.cwd ?? '/',
    capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    noNewPrivileges: true,
  };
}
