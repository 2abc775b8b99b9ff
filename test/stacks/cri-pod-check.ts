// The stack VMs' CRI check (scripts/stacks/guest-checks.sh runs it with tsx, inside the guest): a
// pod of two busybox containers under handler "sysrunc", through a private containerd's CRI
// plugin (the rig of test/rig/), must run both apps in one user namespace mapped to a non-zero
// host range, and leave no container once stopped and removed. Prints one line; exit 0 = pass.
// usage: cri-pod-check.ts <pause-image.tar> <busybox-image.tar>
import { randomUUID } from 'node:crypto';
import { startCriRig } from '../rig/cri.ts';
import { criRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { startTwoAppsUidMaps } from './two-apps.ts';

const [pauseTar, appTar] = process.argv.slice(2);
if (pauseTar === undefined || appTar === undefined) throw new Error('usage: cri-pod-check.ts <pause-image.tar> <busybox-image.tar>');
// containerd under emulation, beside other guests, may take more than the rig's default 30 s to answer.
const rig = await startCriRig('stack-cri', { sysrunc: '/usr/local/bin/sysrunc' }, {}, { images: { pauseTar, appTar }, startTimeoutMs: 300_000 });
const cri = criRuntime(rig.cri);
let verdict = 'fail';
try {
  const config: PodSandboxConfig = {
    metadata: { name: 'stack-pod', uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: `${rig.logDir}/stack-pod`,
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  const pod = await cri.runPodSandbox(config, 'sysrunc');
  const maps = await startTwoAppsUidMaps(cri, pod, config);
  await cri.stopPodSandbox(pod);
  await cri.removePodSandbox(pod);
  const left = await cri.listContainers();
  const [root, hostStart] = (maps[0] ?? '').split(' ');
  if (maps[0] !== maps[1]) console.log(`the two apps have different user namespaces: ${maps.join(' / ')}`);
  else if (root !== '0' || hostStart === '0') console.log(`uid_map is ${maps[0]}`);
  else if (left.length > 0) console.log(`${left.length} containers left after removing the pod`);
  else {
    verdict = 'pass';
    console.log(`two apps share uid_map ${maps[0]}; pod removed, nothing left`);
  }
} catch (err) {
  console.log((err as Error).message.split('\n')[0]);
} finally {
  await rig.stop();
}
process.exit(verdict === 'pass' ? 0 : 1);
