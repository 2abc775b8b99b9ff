// The manager's per-container choice of ownership mode (idmap > shiftfs > clone/chown), from the
// container's request, the manager's own default, and what this host can do.
import type { OwnershipMode, Params, Result } from '../../manager-api/v1.ts';
import { probeIdmapSupport, type IdmapSupport } from '../../host/idmap-probe.ts';
import { chooseOwnershipMode } from './mode-select.ts';
import type { ShiftfsDetection } from './shiftfs.ts';

export type OwnershipRequest = NonNullable<Params<'register'>['ownership']>;
export type OwnershipDecision = NonNullable<Result<'register'>['ownership']>;
export type OwnershipSetting = OwnershipRequest['requested'];

export interface OwnershipHost {
  /** The manager's --ownership: what an `auto` request gets. */
  readonly defaultMode: OwnershipSetting;
  readonly shiftfs: ShiftfsDetection;
  readonly probe?: (path: string) => IdmapSupport;
  /**
   * Whether an overlay over idmapped views of this topmost layer mounts with the engine's options
   * (idmap mode on an overlay rootfs): the create path, tried once in a scratch dir.
   */
  readonly probeOverlay?: (lowerdir: string, options: Readonly<Record<string, string>>) => IdmapSupport;
  /** How overlays are mounted on this kernel (lowerdir+ or legacy), for the decision's reason. */
  readonly overlaySyntax?: () => string;
}

// sysrunc detects shiftfs and keeps reference-counted marks (ShiftfsMarks), but the shifted mount
// has to be made from inside the container's user namespace, which it does not implement yet:
// a host with the module still gets clone/chown rather than a half-done shiftfs path.
const SHIFTFS_MOUNTS_IMPLEMENTED = false;

export class OwnershipUnavailableError extends Error {
  override readonly name = 'OwnershipUnavailableError';
}

export function decideOwnership(req: OwnershipRequest, host: OwnershipHost): OwnershipDecision {
  const probe = host.probe ?? probeIdmapSupport;
  const forcedByRequest = req.requested !== 'auto';
  const setting = forcedByRequest ? req.requested : host.defaultMode;
  const unsupported = req.rootfsPaths.map(probe).find((s): s is Extract<IdmapSupport, { supported: false }> => !s.supported)
    ?? overlayUnsupported(req, host);
  const shiftfsReason = !host.shiftfs.available
    ? host.shiftfs.reason
    : SHIFTFS_MOUNTS_IMPLEMENTED ? undefined : 'the module is loaded, but this sysrunc does not make shiftfs mounts yet';
  const choice = chooseOwnershipMode({
    idmapSupported: unsupported === undefined,
    ...(unsupported === undefined ? {} : { idmapReason: unsupported.reason }),
    shiftfs: shiftfsReason === undefined,
    ...(shiftfsReason === undefined ? {} : { shiftfsReason }),
    isOverlay: req.overlay,
    ...(setting === 'auto' ? {} : { forced: setting }),
  });
  if (!choice.ok) {
    const origin = forcedByRequest ? (req.origin ?? 'ownership setting') : 'sysrunc-mgr --ownership';
    throw new OwnershipUnavailableError(`${origin}: ${choice.error}`);
  }
  // idmap forced means nothing on disk may change: a bind source that cannot be idmapped then fails
  // at its idmapped mount, with the filesystem named, instead of falling back to a chown.
  const bindProbe = setting === 'idmap' ? () => ({ supported: true as const }) : probe;
  const mountsOverlay = req.overlay && (choice.mode === 'idmap' || choice.mode === 'clone');
  const reason = mountsOverlay && host.overlaySyntax ? `${choice.reason}; overlay: ${host.overlaySyntax()}` : choice.reason;
  return { mode: choice.mode, reason, bindSources: bindSourceOwnership(req.bindSources, choice.mode, bindProbe) };
}

/** The overlay create path refused (by the probe), when every layer can be idmapped on its own. */
function overlayUnsupported(req: OwnershipRequest, host: OwnershipHost): Extract<IdmapSupport, { supported: false }> | undefined {
  const top = req.rootfsPaths[0];
  if (!req.overlay || host.probeOverlay === undefined || top === undefined) return undefined;
  const support = host.probeOverlay(top, req.overlayOptions ?? {});
  return support.supported ? undefined : support;
}

/**
 * An idmapped view where the mode is idmap and the source's filesystem allows it; otherwise a
 * chown in place, except for read-only sources: re-owning a host path the container cannot even
 * write (often a host file such as /etc/localtime) is not worth the risk.
 */
function bindSourceOwnership(sources: OwnershipRequest['bindSources'], mode: OwnershipMode, probe: (path: string) => IdmapSupport): OwnershipDecision['bindSources'] {
  const seen = new Set<string>();
  const out: OwnershipDecision['bindSources'] = [];
  for (const { path, readOnly } of sources) {
    if (seen.has(path)) continue;
    seen.add(path);
    const how = mode === 'idmap' && probe(path).supported ? 'idmap' : readOnly ? 'none' : 'chown';
    out.push({ path, how });
  }
  return out;
}
