// Two app containers started in one pod sandbox, each asked for its /proc/self/uid_map: what the
// stack checks compare to see that a pod's apps share one user namespace.
import { APP_IMAGE } from '../rig/cri.ts';
import type { CriRuntime, PodSandboxConfig } from '../rig/cri-api.ts';

/** Starts app0 and app1 (sleeping busybox) in pod; their uid maps, whitespace collapsed. */
export async function startTwoAppsUidMaps(cri: CriRuntime, pod: string, config: PodSandboxConfig): Promise<string[]> {
  const maps: string[] = [];
  for (const i of [0, 1]) {
    const id = await cri.createContainer(pod, { metadata: { name: `app${i}`, attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: `app${i}.log` }, config);
    await cri.startContainer(id);
    const r = await cri.execSync(id, ['cat', '/proc/self/uid_map'], 120);
    if (r.exitCode !== 0) throw new Error(`exec in app${i}: ${r.stderr.trim()}`);
    maps.push(r.stdout.trim().replace(/\s+/g, ' '));
  }
  return maps;
}
