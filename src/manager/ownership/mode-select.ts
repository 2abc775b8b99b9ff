// Which ownership mechanism a container's rootfs gets, best first:
// idmap (idmapped mount, no writes at all) > shiftfs (mark + shifting mount,
// Ubuntu kernels) > clone (overlay rootfs: metacopy clone, then chown, which
// copies up metadata only) > chown (plain directory: chown in place).
export type OwnershipMode = 'idmap' | 'shiftfs' | 'clone' | 'chown';

export interface OwnershipFacts {
  idmapSupported: boolean;
  shiftfs: boolean;
  /** The rootfs is an overlay mount (dockerd's overlay2 / overlayfs snapshotter). */
  isOverlay: boolean;
  forced?: OwnershipMode;
  /** Why idmapped mounts cannot be used (e.g. the probe's errno), when they cannot. */
  idmapReason?: string;
  /** Why shiftfs cannot be used, when it cannot. */
  shiftfsReason?: string;
}

export type OwnershipChoice =
  | { ok: true; mode: OwnershipMode; reason: string }
  | { ok: false; error: string };

function unavailable(mode: OwnershipMode, facts: OwnershipFacts): string | undefined {
  switch (mode) {
    case 'idmap':
      return facts.idmapSupported ? undefined : (facts.idmapReason ?? 'the rootfs filesystem or kernel does not support idmapped mounts');
    case 'shiftfs':
      return facts.shiftfs ? undefined : `shiftfs is not available on this host${facts.shiftfsReason === undefined ? '' : ` (${facts.shiftfsReason})`}`;
    case 'clone':
      return facts.isOverlay ? undefined : 'the rootfs is not an overlay mount, so there are no layers to clone';
    case 'chown':
      return undefined;
  }
}

export function chooseOwnershipMode(facts: OwnershipFacts): OwnershipChoice {
  if (facts.forced) {
    const why = unavailable(facts.forced, facts);
    if (why) return { ok: false, error: `ownership mode ${facts.forced} was forced but cannot work here: ${why}` };
    const note = facts.forced === 'chown' && facts.isOverlay
      ? ' (on an overlay rootfs every chowned file is copied up in full unless the overlay has metacopy=on)'
      : '';
    return { ok: true, mode: facts.forced, reason: `forced by configuration${note}` };
  }
  if (facts.idmapSupported) return { ok: true, mode: 'idmap', reason: 'idmapped mounts are supported: no ownership changes on disk' };
  if (facts.shiftfs) return { ok: true, mode: 'shiftfs', reason: 'no idmapped mounts; shiftfs is available' };
  if (facts.isOverlay) {
    return { ok: true, mode: 'clone', reason: 'no idmapped mounts or shiftfs; overlay rootfs: metacopy clone, then chown of metadata only' };
  }
  return { ok: true, mode: 'chown', reason: 'no idmapped mounts or shiftfs; plain directory rootfs: chown in place' };
}
