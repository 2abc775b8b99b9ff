// A transform is a pure function: (spec, plan) -> (spec, host actions). It never touches the host;
// facts it needs about the host are gathered beforehand into the plan (gather-facts.ts), and the
// actions it asks for are carried out, and recorded for undo, by the manager.
import type { Spec } from '../oci/spec.ts';
import type { HostAction, IdMapping, OwnershipMode, VolumeMount } from '../manager-api/v1.ts';
import type { ContainerSettings } from './settings.ts';
import type { CgroupHierarchy } from '../host/cgroups.ts';
import type { Engine } from './engine-capabilities.ts';
import type { RuntimeFeatures } from './runtime-features.ts';

/** A host path as named in the config, and what it resolved to. */
export interface PathFact {
  readonly requested: string;
  readonly resolved: string;
  readonly kind: 'dir' | 'file' | 'other';
}

/** An overlay mounted at the rootfs (Docker's overlay2, containerd's overlayfs snapshotter). */
export interface OverlayFact {
  /** Topmost first, symlinks resolved. */
  readonly lowerdirs: readonly string[];
  readonly upperdir: string | undefined;
  readonly workdir: string | undefined;
  /** Overlay options worth carrying to a new mount of the same layers. */
  readonly options: Readonly<Record<string, string>>;
}

export interface RootfsFact extends PathFact {
  readonly overlay: OverlayFact | undefined;
  /** Already owned by the caller's container root (the engine shifted it): left as it is. */
  readonly shiftedByEngine?: boolean;
}

export interface UsernsPlan {
  readonly uidMappings: readonly IdMapping[];
  readonly gidMappings: readonly IdMapping[];
  /** The caller's config already had a user namespace: keep it, only fix ownership. */
  readonly fromCaller: boolean;
  /**
   * The config joins namespaces of another sysrunc container: join its user namespace (this path)
   * too, with its mappings (the ones above). `types`: the namespaces joined from it.
   */
  readonly join?: { readonly path: string; readonly types: readonly string[] };
}

/** How the manager chose to give the container's root ownership of its files. */
export interface OwnershipPlan {
  readonly mode: OwnershipMode;
  /** Per resolved bind source (those in bindSources). */
  readonly bindSources: ReadonlyMap<string, 'idmap' | 'chown' | 'none'>;
}

export interface Plan {
  readonly containerId: string;
  /** Absolute bundle directory. */
  readonly bundleDir: string;
  /** Per-container directory the manager made; mount targets go below it. */
  readonly runDir: string;
  readonly userns: UsernsPlan;
  readonly rootfs: RootfsFact;
  readonly ownership: OwnershipPlan;
  /** Resolved sources of the bind mounts that need container-root ownership, by index in spec.mounts. */
  readonly bindSources: ReadonlyMap<number, PathFact>;
  readonly settings: ContainerSettings;
  /** What runc can grant: the shim's own capability bounding set. */
  readonly hostCapabilities: readonly string[];
  /** The engine that wrote the caller's config (read before any transform rewrote its mounts); absent: read from the spec. */
  readonly engine?: Engine;
  /** The image's init is systemd (decided from the process args and the rootfs). */
  readonly systemdInit: boolean;
  /** Absolute path of bin/sysrunc-delegate-cgroups, the hook sysrunc adds. */
  readonly hookBinary: string;
  /** Absolute path of config/journald-sysrunc-kmsg.conf when it is installed (systemd.ts binds it). */
  readonly journaldConfig?: string;
  /** Absolute path of bin/sysrunc-adopt-netns, the hook a pod sandbox gets (pod-network.ts); none: no pod support. */
  readonly netnsHook?: string;
  /**
   * Namespace types the container would share with the host: absent from the config, or joined
   * by a path that is the host's own namespace (Docker's --network host joins
   * /var/run/docker/netns/default).
   */
  readonly hostNamespaces: ReadonlySet<string>;
  /** Store volumes the manager made (or kept) for this container, parents first. */
  readonly volumeMounts: readonly VolumeMount[];
  readonly cgroups: CgroupsFact;
  /**
   * Where the host has kernel filesystems that cannot be mounted in a user namespace
   * (/sys/kernel/debug, /sys/kernel/tracing, ...): only those that exist, since runc cannot
   * create a mount point inside sysfs.
   */
  readonly kernelFsDirs: readonly string[];
  /** Per bind mount (index in the caller's mounts): host mount flags a user namespace cannot clear. */
  readonly lockedBindFlags: ReadonlyMap<number, readonly string[]>;
  /** sysrunc's lxcfs files, when its lxcfs has been up (lxcfs-view.ts); none: the host's /proc. */
  readonly lxcfs?: LxcfsFact | undefined;
  /** What the real runc does itself (its `features`); none: nothing, as runc 1.1. */
  readonly runtime?: RuntimeFeatures;
}

/** The cgroups of the process that becomes runc, and which driver runc will use. */
export interface CgroupsFact {
  readonly hierarchies: readonly CgroupHierarchy[];
  /** runc --systemd-cgroup: systemd makes the container's cgroups. */
  readonly systemdDriver: boolean;
}

export interface TransformOutput {
  readonly spec: Spec;
  readonly actions: readonly HostAction[];
}

export interface Transform {
  readonly name: string;
  apply(spec: Spec, plan: Plan): TransformOutput;
}

/** The files sysrunc's lxcfs serves, as the manager gives them to containers (manager/lxcfs/). */
export interface LxcfsFact {
  readonly files: readonly { readonly destination: string; readonly source: string }[];
  /** The host's online CPUs (lxcfs-cpuset.ts picks a quota's worth of them). */
  readonly onlineCpus: readonly number[];
  /** The mount listener's executable (lxcfs-nested.ts), when it was built; none: no nested figures. */
  readonly mountListener?: string;
}
