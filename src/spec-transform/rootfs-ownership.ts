import path from 'node:path';
import type { HostAction } from '../manager-api/v1.ts';
import type { OverlayFact, Transform } from './types.ts';
import { SysruncError } from '../common/errors.ts';
import { keepsEngineRootfs } from './pod-sandbox.ts';

/**
 * Gives the container's root ownership of the rootfs, the way the manager chose (plan.ownership):
 * - idmap: root.path becomes an idmapped view of the rootfs, so files owned by host root appear
 *   owned by the container's root, without a recursive chown. An overlay rootfs cannot be idmapped
 *   itself (no kernel allows it), so a new overlay is mounted over idmapped views of its layers,
 *   in place of the engine's (which the manager unmounts first: one overlay per upper dir).
 * - clone: root.path becomes a new overlay over a shifted clone of the layers (rootfs-clone).
 * - chown: the rootfs directory is shifted in place while the container exists, and bound into
 *   the run dir.
 * A pod's sandbox keeps the engine's rootfs, bound into the run dir, in every mode (pod-sandbox.ts).
 */
export const rootfsOwnership: Transform = {
  name: 'rootfs-ownership',
  apply(spec, plan) {
    const target = path.join(plan.runDir, 'rootfs');
    const overlay = plan.rootfs.overlay;
    if (plan.rootfs.shiftedByEngine === true) return { spec, actions: [] };
    if (keepsEngineRootfs(spec, plan)) return { spec: { ...spec, root: { ...spec.root, path: target } }, actions: [boundIntoRunDir(plan.rootfs.resolved, target)] };
    switch (plan.ownership.mode) {
      case 'idmap': {
        const actions: HostAction[] =
          overlay === undefined
            ? [{ kind: 'idmapped-mount', source: plan.rootfs.resolved, target, recursive: true }]
            : overlayActions(overlay, plan.runDir, target, plan.rootfs.resolved);
        return { spec: { ...spec, root: { ...spec.root, path: target } }, actions };
      }
      case 'clone': {
        if (overlay?.upperdir === undefined || overlay.workdir === undefined) {
          throw new SysruncError(`root.path ${plan.rootfs.requested}: ownership mode clone needs an overlay rootfs with an upper dir`);
        }
        // Copy-mode store volumes: their synced-out copies in the upper dir keep host-root ownership.
        const keep = plan.volumeMounts.map((v) => v.destination);
        const action: HostAction = {
          kind: 'rootfs-clone', target, lowerdirs: [...overlay.lowerdirs], upperdir: overlay.upperdir, workdir: overlay.workdir, options: { ...overlay.options },
          ...(keep.length > 0 ? { keepOwnership: keep } : {}),
          replaces: engineOverlay(overlay, plan.rootfs.resolved),
        };
        return { spec: { ...spec, root: { ...spec.root, path: target } }, actions: [action] };
      }
      case 'chown': {
        // Shifted in place, then bound into the run dir.
        const actions: HostAction[] = [{ kind: 'chown-tree', path: plan.rootfs.resolved }, boundIntoRunDir(plan.rootfs.resolved, target)];
        return { spec: { ...spec, root: { ...spec.root, path: target } }, actions };
      }
      case 'shiftfs':
        throw new SysruncError(`root.path ${plan.rootfs.requested}: ownership mode shiftfs is not implemented by this sysrunc`);
    }
  },
};

/**
 * The rootfs bound into the run dir, not used in place: runc sets up the rootfs as the container's
 * root, which may not be able to search the engine's directories above the original path.
 */
function boundIntoRunDir(rootfs: string, target: string): HostAction {
  return { kind: 'bind-mount', source: rootfs, target, recursive: true };
}

function overlayActions(overlay: OverlayFact, runDir: string, target: string, engineMountpoint: string): HostAction[] {
  const actions: HostAction[] = [];
  const lowerdirs = overlay.lowerdirs.map((source, i) => {
    // Short names: a long list of layers must still fit the kernel's limits.
    const layer = path.join(runDir, 'layers', String(i));
    actions.push({ kind: 'idmapped-mount', source, target: layer, recursive: false });
    return layer;
  });
  let upperdir: string | undefined;
  let workdir: string | undefined;
  if (overlay.upperdir !== undefined && overlay.workdir !== undefined) {
    // Overlay wants upper and work on one mount: idmap their common parent.
    const parent = commonParent(overlay.upperdir, overlay.workdir);
    const upperMount = path.join(runDir, 'upper');
    actions.push({ kind: 'idmapped-mount', source: parent, target: upperMount, recursive: false, mounterWritable: true });
    upperdir = path.join(upperMount, path.relative(parent, overlay.upperdir));
    workdir = path.join(upperMount, path.relative(parent, overlay.workdir));
  }
  // The engine's overlay over the same upper dir makes way for this one (one overlay per upper dir).
  const engine = engineOverlay(overlay, engineMountpoint);
  const replaces = engine === undefined ? {} : { replaces: engine };
  actions.push({ kind: 'overlay-mount', target, lowerdirs, upperdir, workdir, options: { ...overlay.options }, ...replaces });
  return actions;
}

type EngineOverlayRef = NonNullable<Extract<HostAction, { kind: 'overlay-mount' }>['replaces']>;

function engineOverlay(overlay: OverlayFact, mountpoint: string): EngineOverlayRef | undefined {
  if (overlay.upperdir === undefined || overlay.workdir === undefined) return undefined;
  return { mountpoint, lowerdirs: [...overlay.lowerdirs], upperdir: overlay.upperdir, workdir: overlay.workdir, options: { ...overlay.options } };
}

function commonParent(a: string, b: string): string {
  const pa = a.split('/');
  const pb = b.split('/');
  let i = 0;
  while (i < pa.length - 1 && i < pb.length - 1 && pa[i] === pb[i]) i++;
  return pa.slice(0, i).join('/') || '/';
}
