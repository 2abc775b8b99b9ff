// The DaemonSet's node side on containerd 2.x (issue 23), inside the sid stack guest
// (test/stacks/node-installer-extra.sh runs it): the installer's image, run under the guest's
// Docker against a node root whose config.toml is a private containerd's config as containerd 2.1
// migrates it (version 3); then a real containerd 2.1 on the installer's result (config.toml with
// its `imports` of conf.d/sysrunc.toml) with the manager from the node's /opt/sysrunc, a pod
// through the CRI API with handler sysrunc, and the uninstall, after which the node root is as it
// was, byte for byte (test/rig/node-installer.ts). Prints one line; exit 0 = pass.
// usage: node-installer-check.ts <installer image> <pause-image.tar> <busybox-image.tar>
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { podUidMap, startNode, tree, type InstallerVerb, type NodeRun } from '../rig/node-installer.ts';

const [image, pauseTar, appTar] = process.argv.slice(2);
if (image === undefined || pauseTar === undefined || appTar === undefined) throw new Error('usage: node-installer-check.ts <installer image> <pause-image.tar> <busybox-image.tar>');

async function installer(root: string, verb: InstallerVerb): Promise<string> {
  return execFileSync('docker', ['run', '--rm', '-v', `${root}:/host`, '-e', 'SYSRUNC_NODE_RESTART=0', image as string, verb], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let verdict = 'fail';
let node: NodeRun | undefined;
try {
  node = await startNode({ name: 'stack-node', configVersion: 3, installer, images: { pauseTar, appTar } });
  const main = readFileSync(path.join(node.root, 'etc/containerd/config.toml'), 'utf8');
  // The drop-in, imported from config.toml; or, where the migrated file has an `imports` of its own
  // that does not cover it, the handler's tables appended to config.toml (containerd-config.ts).
  const dropInFile = path.join(node.root, 'etc/containerd/conf.d/sysrunc.toml');
  const form = existsSync(dropInFile) ? `drop-in conf.d/sysrunc.toml, ${main.includes('conf.d/sysrunc.toml') ? 'imported' : 'NOT imported'}` : 'tables appended to config.toml';
  if (!/^version = 3$/m.test(main)) throw new Error(`config.toml after install is not version 3:\n${main}`);
  const map = await podUidMap(node.rig, 'sysrunc');
  const [inside, outside] = map.split(' ');
  await node.stop();
  await installer(node.root, 'uninstall');
  const same = isDeepStrictEqual(tree(node.root), node.before);
  if (inside !== '0' || outside === '0') console.log(`the sysrunc pod's uid_map is ${map}`);
  else if (!same) console.log('after uninstall the node root differs from before install');
  else {
    verdict = 'pass';
    console.log(`containerd ${execFileSync('containerd', ['--version'], { encoding: 'utf8' }).split(' ')[2] ?? '?'} on the installer's version 3 config (${form}): pod under handler sysrunc, uid_map ${map}; uninstall left the node root byte for byte as before`);
  }
} catch (err) {
  console.log((err as Error).message.split('\n').slice(0, 3).join(' | '));
} finally {
  await node?.stop();
}
process.exit(verdict === 'pass' ? 0 : 1);
