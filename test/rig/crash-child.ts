// Fixture for rig.test.ts: starts a daemon with a running container, reports, then waits to be killed.
// usage: node --import tsx test/rig/crash-child.ts <rig-name>
import { startDockerd } from './dockerd.ts';
import { ensureDockerImage } from './images.ts';

const name = process.argv[2];
if (name === undefined) throw new Error('usage: crash-child.ts <rig-name>');
const d = await startDockerd({ name, runtimes: { 'runc-alias': { path: '/usr/sbin/runc' } } });
await ensureDockerImage(d);
const run = await d.docker(['run', '-d', '--runtime=runc-alias', 'bb:local', 'sleep', '1000']);
process.stdout.write(`ready ${d.pid} ${d.containerd.pid} ${run.stdout.trim()}\n`);
setInterval(() => undefined, 1 << 30);
