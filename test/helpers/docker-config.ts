// The caller's config the spec transform tests start from: what Docker writes for `docker run bb sh`
// with a rootfs on overlay2 (test/helpers/plan.ts's DOCKER_ROOTFS), with the mounts a test is about.
import type { Mount, Spec } from '../../src/oci/spec.ts';
import { DOCKER_ROOTFS } from './plan.ts';

export const PROC_MOUNT: Mount = { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] };

export function dockerConfig(mounts: readonly Mount[], extra: Partial<Spec> = {}): Spec {
  return {
    ociVersion: '1.0.2-dev',
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/', env: ['PATH=/bin'] },
    root: { path: DOCKER_ROOTFS },
    mounts: [...mounts],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
    ...extra,
  };
}
