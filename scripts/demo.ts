// See scripts/demo.sh: what sysrunc is for, shown step by step on a private dockerd and manager
// (the machine's own Docker, if any, is never touched), everything removed afterwards.
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import { ensureDebianImage, DEBIAN_IMAGE_TAGS, SYSTEMD_STOP_SIGNAL } from '../test/rig/debian-images.ts';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';

const out = (text: string) => process.stdout.write(text);
let failed = false;

/** One step: what it proves, the command, what it printed; a failed step fails the demo. */
async function show(d: DockerDaemon, proves: string, args: string[], expect?: (stdout: string) => boolean): Promise<string> {
  out(`\n== ${proves}\n$ docker ${args.join(' ')}\n`);
  const r = await d.docker(args, { reject: false, timeoutMs: 180_000 });
  out(`${r.stdout}${r.stdout.endsWith('\n') || r.stdout === '' ? '' : '\n'}${r.stderr}`);
  if (r.exitCode !== 0 || (expect !== undefined && !expect(r.stdout))) {
    failed = true;
    out('   ^ NOT as expected\n');
  }
  return r.stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, seconds = 90): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  failed = true;
  out(`   ^ ${what}: not within ${seconds} s\n`);
}

const manager = await startTestManager({ name: 'demo', lxcfs: true });
const d = await startDockerd({ name: 'demo', runtimes: { sysrunc: { path: SYSRUNC } }, env: manager.env });
const containers: string[] = [];
try {
  await ensureDockerImage(d);
  out('\n(building the Debian dind and systemd demo images on first use takes a minute)\n');
  await ensureDebianImage(d, 'dind');
  await ensureDebianImage(d, 'systemd');

  await show(d, 'container root is an unprivileged host uid range (plain runc: 0 0 4294967295)', ['run', '--rm', '--runtime=sysrunc', 'bb:local', 'cat', '/proc/self/uid_map']);
  await show(d, 'yet the image files are root-owned inside: an idmapped rootfs, nothing chowned', ['run', '--rm', '--runtime=sysrunc', 'bb:local', 'sh', '-c', 'id; ls -ln / | head -4']);

  await show(d, "the container's own /proc (lxcfs): -m 256m --cpus 1 shows 256 MB and 1 CPU", ['run', '--rm', '--runtime=sysrunc', '-m', '256m', '--cpus', '1', DEBIAN_IMAGE_TAGS.systemd, 'sh', '-c', 'free -m | head -2; nproc'], (s) => /^Mem:\s+256\s/m.test(s) && /^1$/m.test(s));

  // Docker in Docker, without --privileged.
  containers.push('demo-dind');
  await show(d, 'Docker in Docker without --privileged: the inner dockerd starts (no --privileged flag anywhere)', ['run', '-d', '--name', 'demo-dind', '--runtime=sysrunc', DEBIAN_IMAGE_TAGS.dind]);
  await until('the inner dockerd answers', async () => (await d.docker(['exec', 'demo-dind', 'docker', 'info'], { reject: false })).exitCode === 0);
  await show(d, 'inside it, a base image imported and an image built FROM it with docker build', [
    'exec', 'demo-dind', 'sh', '-c',
    'mkdir -p /tmp/bb/bin /tmp/ctx && cp /bin/busybox /tmp/bb/bin/ && for c in sh echo cat; do ln -sf busybox /tmp/bb/bin/$c; done && tar -C /tmp/bb -c . | docker import - inner:base >/dev/null && ' +
      'printf "FROM inner:base\\nRUN echo built inside a sysrunc container > /greeting\\nCMD [\\"cat\\", \\"/greeting\\"]\\n" > /tmp/ctx/Dockerfile && DOCKER_BUILDKIT=0 docker build -q -t inner:built /tmp/ctx',
  ]);
  await show(d, 'and run by the inner Docker', ['exec', 'demo-dind', 'docker', 'run', '--rm', 'inner:built'], (s) => s.includes('built inside a sysrunc container'));

  // systemd as PID 1.
  containers.push('demo-systemd');
  await show(d, 'systemd as PID 1 in its own user namespace', ['run', '-d', '--name', 'demo-systemd', '--runtime=sysrunc', '--stop-signal', SYSTEMD_STOP_SIGNAL, DEBIAN_IMAGE_TAGS.systemd]);
  await until('systemd reaches running', async () => (await d.docker(['exec', 'demo-systemd', 'systemctl', 'is-system-running'], { reject: false })).stdout.trim() === 'running');
  await show(d, 'it boots to "running" (no failed unit)', ['exec', 'demo-systemd', 'systemctl', 'is-system-running'], (s) => s === 'running');

  // A pod: two containers sharing network and user namespace.
  containers.push('demo-pod', 'demo-pod-app');
  await show(d, 'a pod: a first container holds the namespaces', ['run', '-d', '--name', 'demo-pod', '--runtime=sysrunc', 'bb:local', 'sleep', '1000']);
  await show(d, 'a second one joins its network (docker run --network container:demo-pod)', ['run', '-d', '--name', 'demo-pod-app', '--runtime=sysrunc', '--network', 'container:demo-pod', 'bb:local', 'sleep', '1000']);
  const ns = async (name: string) => (await d.docker(['exec', name, 'sh', '-c', 'readlink /proc/self/ns/user; readlink /proc/self/ns/net'], { reject: false })).stdout.trim().replace('\n', ' ');
  const [a, b] = [await ns('demo-pod'), await ns('demo-pod-app')];
  out(`\n== both share one user namespace and one network namespace, so the joiner's root administers the network it joined\n   demo-pod:     ${a}\n   demo-pod-app: ${b}\n`);
  if (a === '' || a !== b) {
    failed = true;
    out('   ^ NOT shared\n');
  }
  await show(d, "the joiner's root brings the shared loopback down and up", ['exec', 'demo-pod-app', 'sh', '-c', 'ip link set lo down && ip link set lo up && echo ok'], (s) => s === 'ok');
} finally {
  if (containers.length > 0) await d.docker(['rm', '-f', ...containers], { reject: false, timeoutMs: 120_000 });
  await d.stop();
  await manager.dispose();
}
out(failed ? '\n== demo FAILED (see the steps marked above)\n' : '\n== demo done: containers removed, dockerd and sysrunc-mgr stopped, nothing left mounted\n');
process.exit(failed ? 1 : 0);
