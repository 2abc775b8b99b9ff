// A Kubernetes pod's own volumes (emptyDir, configMap, secret, projected, downwardAPI; kubelet's
// etc-hosts and termination-log files) are host directories kubelet made for this pod alone, under
// <kubelet root>/pods/<pod uid>/, which only host root can traverse. Like the engine's own files
// (bind-mount-ownership.ts isEngineFile) they get an idmapped view in which host ids are the pod's
// (Kubernetes' own user-namespaced pods mount them idmapped too): files kubelet wrote root-owned,
// or owned by the pod's fsGroup, look so inside, and a pod written for runc reads its secrets.
// hostPath volumes are not among them: they are the host's directories, and keep the container's
// own range unless the container is set to bind-ownership=host-root (SECURITY.md, Binds).
import { lstatSync } from 'node:fs';
import path from 'node:path';
import type { Spec } from '../oci/spec.ts';

export const KUBELET_PODS_DIR = '/var/lib/kubelet/pods';

// containerd's CRI names the pod's uid; CRI-O's annotation has another name.
const POD_UID_ANNOTATIONS = ['io.kubernetes.cri.sandbox-uid', 'io.kubernetes.pod.uid'];

/** Whether a resolved bind source lies in the directory kubelet keeps for this container's pod. */
export function isPodVolume(resolvedSource: string, spec: Spec, podsDir = KUBELET_PODS_DIR): boolean {
  const uid = POD_UID_ANNOTATIONS.map((a) => spec.annotations?.[a]).find((v) => v !== undefined && /^[0-9A-Za-z-]{1,64}$/.test(v));
  if (uid === undefined) return false;
  return resolvedSource.startsWith(`${path.join(podsDir, uid)}/`);
}

/**
 * Whether only host root can traverse the pods dir (kubelet makes it 0750 root:root): then a
 * setuid-root file a pod's root leaves in its volume is reachable by nobody else on the host.
 */
export function podsDirIsPrivate(podsDir = KUBELET_PODS_DIR): boolean {
  try {
    const st = lstatSync(podsDir);
    return st.isDirectory() && st.uid === 0 && (st.mode & 0o001) === 0 && (st.gid === 0 || (st.mode & 0o010) === 0);
  } catch {
    return false;
  }
}
