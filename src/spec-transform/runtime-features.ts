// What the real runc can do itself, read from its own `runc features` answer (never from its
// version string). The manager learns it once at start (host/runc-features.ts); transforms choose
// between runc's way and sysrunc's own by these facts.

/** The facts transforms use; every one false is runc 1.1's answer (and a runc that gave none). */
export interface RuntimeFeatures {
  /**
   * Mounts with their own uidMappings/gidMappings (OCI 1.1+ idmapped mounts):
   * linux.mountExtensions.idmap.enabled, which runc 1.2 and later report.
   */
  readonly idmapMounts: boolean;
  /**
   * Joining, by path, namespaces the host's user namespace owns while the container has a user
   * namespace of its own, for create and for exec (runc 1.2.1's two-stage join: first what host
   * root may join, then the user namespace, then the rest). runc's features say nothing of the join
   * itself; the mountExtensions section they gained in the same generation (1.2) stands for it.
   */
  readonly joinsHostOwnedNamespaces: boolean;
}

export const RUNC_1_1_FEATURES: RuntimeFeatures = { idmapMounts: false, joinsHostOwnedNamespaces: false };

type Json = Record<string, unknown>;

function objectAt(doc: unknown, key: string): Json | undefined {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const value = (doc as Json)[key];
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
}

/** The facts in a `runc features` document (parsed JSON); anything missing or malformed: false. */
export function runtimeFeaturesOf(doc: unknown): RuntimeFeatures {
  const extensions = objectAt(objectAt(doc, 'linux'), 'mountExtensions');
  return {
    idmapMounts: objectAt(extensions, 'idmap')?.enabled === true,
    joinsHostOwnedNamespaces: extensions !== undefined,
  };
}
