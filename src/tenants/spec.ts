// The OCI spec of a tenant container, and the way back: Inspect rebuilds the Container from the
// spec containerd stores plus a few labels, so the service needs no database. Pure functions.
import { defaultMounts } from '../oci/default-mounts.ts';
import type { Container, MountInfo } from '../tenants-api/v1.ts';

/** tini, bind-mounted read-only into /dev (a tmpfs runc makes): the rootfs is never written. */
export const TINI_IN_CONTAINER = '/dev/.sysrunc-tini';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const CPU_PERIOD = 100_000;

export const LABELS = {
  managed: 'io.sysrunc.tenant/managed',
  name: 'io.sysrunc.tenant/name',
  rootfs: 'io.sysrunc.tenant/rootfs',
  image: 'io.sysrunc.tenant/image',
  interactive: 'io.sysrunc.tenant/interactive',
  shutdownTimeout: 'io.sysrunc.tenant/shutdown-timeout',
  /** How many of the spec's mounts, at its end, are the tenant's own. */
  userMounts: 'io.sysrunc.tenant/user-mounts',
  /** Indexes of the tenant's bind mounts that got "rbind" added (see ociMount). */
  mountFixups: 'io.sysrunc.tenant/mount-fixups',
  /** Set when the service added PATH to env (not given by the tenant). */
  defaultPath: 'io.sysrunc.tenant/default-path',
  restarts: 'io.sysrunc.tenant/restarts',
  failed: 'io.sysrunc.tenant/failed',
} as const;

export interface SpecInputs {
  readonly container: Container;
  /** The root the task runs in: the rootfs path, or "rootfs" (the shim's bundle dir) for images. */
  readonly rootPath: string;
  readonly netnsPath: string | undefined;
  readonly cgroupsPath: string;
  readonly tini: string;
  /** Image defaults when the tenant gave none. */
  readonly imageEnv?: readonly string[];
  readonly imageCwd?: string;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/**
 * runc 1.1 binds only with a bind/rbind option: a bind mount without one gets "rbind" first, and
 * the label mountFixups lists those mounts so Inspect gives back the options as given.
 */
export function ociMount(m: MountInfo): { mount: OciMount; fixed: boolean } {
  const options = [...(m.options ?? [])];
  const fixed = m.type === 'bind' && !options.includes('bind') && !options.includes('rbind');
  if (fixed) options.unshift('rbind');
  return { mount: { destination: m.target, type: m.type, source: m.source, options }, fixed };
}

export function userMounts(c: Container): { mounts: OciMount[]; fixups: number[] } {
  const out = (c.mounts ?? []).map(ociMount);
  return { mounts: out.map((o) => o.mount), fixups: out.flatMap((o, i) => (o.fixed ? [i] : [])) };
}

export function buildSpec(i: SpecInputs): Record<string, unknown> {
  const c = i.container;
  const env = c.env ?? [...(i.imageEnv ?? [])];
  const addPath = !env.some((e) => e.startsWith('PATH='));
  const interactive = c.interactive === true;
  const resources: Record<string, unknown> = { devices: [{ allow: false, access: 'rwm' }] };
  if (c.cpu !== undefined) resources['cpu'] = { quota: Math.round(c.cpu * CPU_PERIOD), period: CPU_PERIOD };
  if (c.memory !== undefined) resources['memory'] = { limit: c.memory };
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: interactive ? [TINI_IN_CONTAINER, '--', ...c.entrypoint] : [...c.entrypoint],
      env: addPath ? [DEFAULT_PATH, ...env] : env,
      cwd: c.workingDir ?? i.imageCwd ?? '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: i.rootPath, readonly: false },
    hostname: c.name,
    mounts: [
      ...defaultMounts(),
      ...(interactive ? [{ destination: TINI_IN_CONTAINER, type: 'bind', source: i.tini, options: ['bind', 'ro', 'nosuid', 'nodev'] }] : []),
      ...userMounts(c).mounts,
    ],
    linux: {
      cgroupsPath: i.cgroupsPath,
      resources,
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, i.netnsPath === undefined ? { type: 'network' } : { type: 'network', path: i.netnsPath }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export function buildLabels(c: Container, addedPath: boolean): Record<string, string> {
  return {
    [LABELS.managed]: '1',
    [LABELS.name]: c.name,
    ...(c.rootfs !== undefined ? { [LABELS.rootfs]: c.rootfs } : {}),
    ...(c.image !== undefined ? { [LABELS.image]: c.image } : {}),
    [LABELS.interactive]: c.interactive === true ? 'true' : 'false',
    ...(c.shutdownTimeout !== undefined ? { [LABELS.shutdownTimeout]: String(c.shutdownTimeout) } : {}),
    [LABELS.userMounts]: String(c.mounts?.length ?? 0),
    [LABELS.mountFixups]: userMounts(c).fixups.join(','),
    ...(addedPath ? { [LABELS.defaultPath]: '1' } : {}),
    [LABELS.restarts]: '0',
  };
}

interface StoredSpec {
  process?: { args?: string[]; env?: string[]; cwd?: string };
  mounts?: OciMount[];
  linux?: { namespaces?: Array<{ type: string; path?: string }>; resources?: { cpu?: { quota?: number; period?: number }; memory?: { limit?: number } } };
}

/** The Container Run was given, from the stored spec and labels. */
export function containerFromSpec(specJson: unknown, labels: Readonly<Record<string, string>>): Container {
  const spec = (specJson ?? {}) as StoredSpec;
  const interactive = labels[LABELS.interactive] === 'true';
  const args = spec.process?.args ?? [];
  let env = spec.process?.env ?? [];
  if (labels[LABELS.defaultPath] === '1') env = env.filter((e, idx) => !(idx === 0 && e.startsWith('PATH=')));
  const nUser = Number(labels[LABELS.userMounts] ?? '0');
  const fixups = new Set((labels[LABELS.mountFixups] ?? '').split(',').filter((x) => x !== '').map(Number));
  const mounts = (nUser > 0 ? (spec.mounts ?? []).slice(-nUser) : []).map((m, idx) => ({
    source: m.source,
    target: m.destination,
    type: m.type,
    options: fixups.has(idx) ? (m.options ?? []).slice(1) : (m.options ?? []),
  }));
  const netns = spec.linux?.namespaces?.find((n) => n.type === 'network')?.path;
  const cpu = spec.linux?.resources?.cpu;
  const memory = spec.linux?.resources?.memory?.limit;
  const timeout = labels[LABELS.shutdownTimeout];
  return {
    name: labels[LABELS.name] ?? '',
    ...(labels[LABELS.rootfs] !== undefined ? { rootfs: labels[LABELS.rootfs] } : {}),
    ...(labels[LABELS.image] !== undefined ? { image: labels[LABELS.image] } : {}),
    ...(env.length > 0 ? { env } : {}),
    ...(spec.process?.cwd !== undefined && spec.process.cwd !== '/' ? { workingDir: spec.process.cwd } : {}),
    ...(netns !== undefined ? { network: { namespace: netns.replace(/^.*\//, '') } } : {}),
    ...(mounts.length > 0 ? { mounts } : {}),
    entrypoint: interactive ? args.slice(2) : args,
    interactive,
    ...(cpu?.quota !== undefined && cpu.period ? { cpu: cpu.quota / cpu.period } : {}),
    ...(memory !== undefined ? { memory } : {}),
    ...(timeout !== undefined ? { shutdownTimeout: Number(timeout) } : {}),
  };
}
