// bin/sysrunc-adopt-netns on its own, with real network namespaces: a pinned one set up the way CNI
// sets up a pod's (a veth with addresses and routes), and a process in a namespace of its own
// standing for the sandbox. What the pod's network must keep after the hook moved it (README *Pods*).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { execTool } from '../rig/exec.ts';
import { REPO_ROOT } from '../rig/paths.ts';

const HOOK = path.join(REPO_ROOT, 'bin/sysrunc-adopt-netns');
const tag = randomBytes(3).toString('hex');
const netns = `sysrunc-hook-${tag}`;
const pinned = `/run/netns/${netns}`;
const hostEnd = `srh${tag}`;
let sandbox: ChildProcess;
let hook: { exitCode: number; stderr: string };

const ip = async (...args: string[]): Promise<string> => (await execTool('ip', args, process.env)).stdout;
const inSandbox = async (...args: string[]): Promise<string> => (await execTool('nsenter', [`--net=/proc/${sandbox.pid}/ns/net`, 'ip', ...args], process.env)).stdout;

before(async () => {
  await ip('netns', 'add', netns);
  await ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
  await ip('link', 'set', hostEnd, 'up');
  const setup = [
    ['link', 'set', 'dev', 'lo', 'up'],
    ['link', 'set', 'dev', 'eth0', 'up'],
    ['address', 'add', '192.0.2.10/24', 'dev', 'eth0'],
    ['address', 'add', '2001:db8:7::10/64', 'dev', 'eth0', 'nodad'],
    ['route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'eth0'],
    ['route', 'add', '198.51.100.0/24', 'via', '192.0.2.254', 'dev', 'eth0', 'onlink'],
    ['-6', 'route', 'add', 'default', 'via', '2001:db8:7::1', 'dev', 'eth0'],
  ];
  for (const args of setup) await ip('-n', netns, ...args);
  sandbox = spawn('unshare', ['--net', 'sleep', '600'], { stdio: 'ignore' });
  // The sandbox process is in its own namespace once unshare has exec'd sleep.
  for (let i = 0; i < 100 && statSync(`/proc/${sandbox.pid}/ns/net`).ino === statSync('/proc/self/ns/net').ino; i++) await new Promise((r) => setTimeout(r, 10));
  const r = await execTool(HOOK, [pinned], process.env, { reject: false, input: JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid: sandbox.pid, bundle: '/nonexistent' }) });
  hook = { exitCode: r.exitCode ?? -1, stderr: r.stderr };
});

after(async () => {
  sandbox?.kill('SIGKILL');
  await execTool('ip', ['netns', 'delete', netns], process.env, { reject: false });
  await execTool('ip', ['link', 'delete', hostEnd], process.env, { reject: false });
});

test('the hook succeeds for a pod namespace set up as CNI does', () => {
  assert.equal(hook.exitCode, 0, hook.stderr);
});

test('the pod\'s interface is in the sandbox\'s namespace, and up', async () => {
  assert.match(await inSandbox('-o', 'link', 'show', 'dev', 'eth0'), /[<,]UP[,>]/);
});

test('the interface keeps its IPv4 address and its global IPv6 address', async () => {
  const addrs = await inSandbox('-o', 'addr', 'show', 'dev', 'eth0');
  assert.match(addrs, /inet 192\.0\.2\.10\/24 /);
  assert.match(addrs, /inet6 2001:db8:7::10\/64 /);
});

test('the default routes of both families come along, and a route flagged onlink is added back', async () => {
  assert.match(await inSandbox('-4', 'route', 'show'), /^default via 192\.0\.2\.1 dev eth0/m);
  assert.match(await inSandbox('-4', 'route', 'show'), /^198\.51\.100\.0\/24 via 192\.0\.2\.254 dev eth0/m);
  assert.match(await inSandbox('-6', 'route', 'show'), /^default via 2001:db8:7::1 dev eth0/m);
});

test('the loopback interface of the sandbox\'s namespace is up', async () => {
  assert.match(await inSandbox('-o', 'link', 'show', 'dev', 'lo'), /[<,]UP[,>]/);
});

test('the pinned file now names the sandbox\'s namespace, for whatever enters the pod\'s network through it', () => {
  assert.equal(statSync(pinned).ino, statSync(`/proc/${sandbox.pid}/ns/net`).ino);
});
