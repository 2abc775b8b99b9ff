// See scripts/demo.sh. Uses the test rig's private dockerd so the machine's own Docker (if any)
// is never touched.
import { startDockerd } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';

const step = (text: string) => process.stdout.write(`\n== ${text}\n`);

const manager = await startTestManager({ name: 'demo' });
const docker = await startDockerd({ name: 'demo', runtimes: { sysrunc: { path: SYSRUNC } }, env: manager.env });
let failed = false;
try {
  await ensureDockerImage(docker);
  const show = async (title: string, args: string[]) => {
    step(title);
    process.stdout.write(`$ docker ${args.join(' ')}\n`);
    const r = await docker.docker(args, { reject: false });
    process.stdout.write(r.stdout + r.stderr);
    if (r.exitCode !== 0) failed = true;
  };
  await show('container root is an unprivileged host uid range', ['run', '--rm', '--runtime=sysrunc', 'bb:local', 'cat', '/proc/self/uid_map']);
  await show('yet the image files are root-owned inside (idmapped rootfs, no chown)', ['run', '--rm', '--runtime=sysrunc', 'bb:local', 'sh', '-c', 'id; ls -ln / | head -6']);
  await show('the same image under plain runc, for comparison', ['run', '--rm', '--runtime=runc', 'bb:local', 'cat', '/proc/self/uid_map']);
  step('on the host, a sysrunc container process runs as its range, not as root');
  const id = (await docker.docker(['run', '-d', '--runtime=sysrunc', 'bb:local', 'sleep', '60'])).stdout.trim();
  const pid = (await docker.docker(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
  const { execa } = await import('execa');
  process.stdout.write((await execa('ps', ['-o', 'pid,uid,gid,cmd', '-p', pid])).stdout + '\n');
  await docker.docker(['rm', '-f', id]);
} finally {
  await docker.stop();
  await manager.dispose();
}
step(failed ? 'demo FAILED' : 'demo done: dockerd and sysrunc-mgr stopped, nothing left mounted');
process.exit(failed ? 1 : 0);
