// Which engine wrote a config, and the capability set that engine gives a container that asked for
// nothing: the yardstick for "the caller narrowed its capabilities" (system-capabilities.ts).
import path from 'node:path';
import type { Capabilities, Spec } from '../oci/spec.ts';

/** Docker's (moby oci/caps defaults) and containerd's (oci.WithDefaultSpec, so also CRI's): the same 14. */
export const DOCKER_CONTAINERD_DEFAULT: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** podman's containers.conf default_capabilities (containers-common, podman 4.x). */
export const PODMAN_DEFAULT: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETFCAP',
  'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** CRI-O's crio.conf default_capabilities. */
export const CRIO_DEFAULT: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE', 'CAP_KILL',
];

/** `runc spec`'s, which configs written without an engine (sysrunc's depot and tenant service) start from. */
export const RUNC_SPEC_DEFAULT: readonly string[] = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export type Engine = 'docker' | 'containerd-cri' | 'cri-o' | 'podman' | 'unknown';

export function engineOf(spec: Spec, containerId: string): Engine {
  const annotations = spec.annotations ?? {};
  if (annotations['io.kubernetes.cri.container-type'] !== undefined) return 'containerd-cri';
  // Before CRI-O's: podman 4 writes some io.kubernetes.cri-o.* annotations too.
  if (annotations['io.container.manager'] === 'libpod') return 'podman';
  if (Object.keys(annotations).some((key) => key.startsWith('io.kubernetes.cri-o.'))) return 'cri-o';
  // Docker 20.10 writes no annotations; its /etc/hostname lives in a directory named by the container's id.
  const hostname = (spec.mounts ?? []).find((m) => m.destination === '/etc/hostname');
  if (hostname?.source !== undefined && path.basename(path.dirname(hostname.source)) === containerId) return 'docker';
  return 'unknown';
}

/**
 * The capabilities the caller's process may have at most: its bounding set (engines list every
 * capability there), or, without one, what its other sets name. Undefined: the config lists none
 * at all (a hand-written config), which asks for nothing special.
 */
export function callerCapabilities(capabilities: Capabilities | undefined): Set<string> | undefined {
  if (capabilities === undefined) return undefined;
  if (capabilities.bounding !== undefined) return new Set(capabilities.bounding);
  return new Set([...(capabilities.effective ?? []), ...(capabilities.permitted ?? [])]);
}

/**
 * The default capabilities of the engine that wrote the config. A config from no known engine is
 * measured against `runc spec`'s when it holds exactly that set, and against Docker's and
 * containerd's (the default most tools build on) otherwise.
 */
export function engineDefault(engine: Engine, caller: ReadonlySet<string>): readonly string[] {
  switch (engine) {
    case 'docker':
    case 'containerd-cri':
      return DOCKER_CONTAINERD_DEFAULT;
    case 'cri-o':
      return CRIO_DEFAULT;
    case 'podman':
      return PODMAN_DEFAULT;
    case 'unknown':
      return caller.size === RUNC_SPEC_DEFAULT.length && RUNC_SPEC_DEFAULT.every((c) => caller.has(c)) ? RUNC_SPEC_DEFAULT : DOCKER_CONTAINERD_DEFAULT;
  }
}

/**
 * The capabilities of its engine's default that the caller removed (`--cap-drop`, a pod's
 * securityContext drop); empty when it asked for nothing special.
 */
export function removedFromDefault(spec: Spec, engine: Engine): string[] {
  const caller = callerCapabilities(spec.process?.capabilities);
  if (caller === undefined) return [];
  return engineDefault(engine, caller).filter((c) => !caller.has(c));
}
