import path from 'node:path';
import type { HostAction } from '../manager-api/v1.ts';
import type { OverlayFact, Transform } from './types.ts';

/**
 * Points root.path at an idmapped view of the rootfs, so that files owned by host root appear owned
 * by the container's root, without a recursive chown. An overlay rootfs cannot be idmapped itself
 * (no kernel allows it), so a new overlay is mounted over idmapped views of its layers.
 */
export const idmappedRootfs: Transform = {
  name: 'idmapped-rootfs',
  apply(spec, plan) {
    const target = path.join(plan.runDir, 'rootfs');
    const overlay = plan.rootfs.overlay;
    const actions: HostAction[] =
      overlay === undefined
        ? [{ kind: 'idmapped-mount', source: plan.rootfs.resolved, target, recursive: true }]
        : overlayActions(overlay, plan.runDir, target);
    return { spec: { ...spec, root: { ...spec.root, path: target } }, actions };
  },
};

function overlayActions(overlay: OverlayFact, runDir: string, target: string): HostAction[] {
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
  actions.push({ kind: 'overlay-mount', target, lowerdirs, upperdir, workdir, options: { ...overlay.options } });
  return actions;
}

function commonParent(a: string, b: string): string {
  const pa = a.split('/');
  const pb = b.split('/');
  let i = 0;
  while (i < pa.length - 1 && i < pb.length - 1 && pa[i] === pb[i]) i++;
  return pa.slice(0, i).join('/') || '/';
}
