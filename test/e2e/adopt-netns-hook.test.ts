// sysrunc's pod network hook on its own, with real network namespaces: a pinned one set up the way
// CNI sets up a pod's (a veth with addresses and routes), and a process in a namespace of its own
// standing for the sandbox. What the pod's network must keep after the hook moved it (README
// *Pods*), for both forms: dist/sysrunc-adopt-netns (C, what the manager gives pods where it is
// built) and bin/sysrunc-adopt-netns (the shell reference, where it is not).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { execTool } from '../rig/exec.ts';
import { REPO_ROOT } from '../rig/paths.ts';

const ip = async (...args: string[]): Promise<string> => (await execTool('ip', args, process.env)).stdout;
const stateFor = (pid: number | undefined): string => JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid, bundle: '/nonexistent' });

const NATIVE_HOOK = path.join(REPO_ROOT, 'dist/sysrunc-adopt-netns');
const SCRIPT_HOOK = path.join(REPO_ROOT, 'bin/sysrunc-adopt-netns');

test('the C hook is built (the build makes dist/sysrunc-adopt-netns where a C compiler is)', () => {
  assert.ok(existsSync(NATIVE_HOOK), `${NATIVE_HOOK} is missing: run node scripts/build.mjs`);
});

for (const [form, HOOK] of [
  ['the C hook', NATIVE_HOOK],
  ['the shell hook', SCRIPT_HOOK],
] as const) {
  describe(form, () => {
    const tag = randomBytes(3).toString('hex');
    const netns = `sysrunc-hook-${tag}`;
    const pinned = `/run/netns/${netns}`;
    const hostEnd = `srh${tag}`;
    let sandbox: ChildProcess;
    let hook: { exitCode: number; stderr: string };
    const inSandbox = async (...args: string[]): Promise<string> => (await execTool('nsenter', [`--net=/proc/${sandbox.pid}/ns/net`, 'ip', ...args], process.env)).stdout;

    before(async () => {
      await ip('netns', 'add', netns);
      await ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      await ip('link', 'add', `${hostEnd}b`, 'type', 'veth', 'peer', 'name', 'net1', 'netns', netns);
      await ip('link', 'set', hostEnd, 'up');
      const setup = [
        ['link', 'set', 'dev', 'lo', 'up'],
        ['link', 'set', 'dev', 'eth0', 'up'],
        ['address', 'add', '192.0.2.10/24', 'dev', 'eth0'],
        ['address', 'add', '2001:db8:7::10/64', 'dev', 'eth0', 'nodad'],
        ['route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'eth0'],
        ['route', 'add', '198.51.100.0/24', 'via', '192.0.2.254', 'dev', 'eth0', 'onlink'],
        ['-6', 'route', 'add', 'default', 'via', '2001:db8:7::1', 'dev', 'eth0'],
        // A second interface as Calico sets one up: a /32 address, its gateway reached by a link route.
        ['link', 'set', 'dev', 'net1', 'up'],
        ['address', 'add', '10.244.1.5/32', 'dev', 'net1'],
        ['route', 'add', '169.254.1.1', 'dev', 'net1', 'scope', 'link'],
        ['route', 'add', '203.0.113.0/24', 'via', '169.254.1.1', 'dev', 'net1'],
        // A link the kernel does not move (as the fallback tunnel tunl0 every namespace gets once
        // Calico's IPIP loads ipip): the hook leaves it.
        ['link', 'add', 'br0', 'type', 'bridge'],
      ];
      for (const args of setup) await ip('-n', netns, ...args);
      // The sandbox's namespace has a link at eth0's index already, so the kernel gives eth0 another.
      const eth0Index = (await ip('-n', netns, '-o', 'link', 'show', 'dev', 'eth0')).split(':')[0] ?? '';
      sandbox = spawn('unshare', ['--net', 'sh', '-c', `ip link add taken index ${eth0Index} type veth peer name takenpeer index $((${eth0Index} + 100)) && echo ready && exec sleep 600`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        sandbox.stdout?.once('data', () => resolve());
        sandbox.once('exit', (code) => reject(new Error(`the sandbox's namespace was not set up (exit ${code})`)));
      });
      const r = await execTool(HOOK, [pinned], process.env, { reject: false, input: stateFor(sandbox.pid) });
      hook = { exitCode: r.exitCode ?? -1, stderr: r.stderr };
    });

    after(async () => {
      sandbox?.kill('SIGKILL');
      await execTool('ip', ['netns', 'delete', netns], process.env, { reject: false });
      for (const end of [hostEnd, `${hostEnd}b`]) await execTool('ip', ['link', 'delete', end], process.env, { reject: false });
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

    test('a second interface comes along with its /32 address and a route through a gateway its link route reaches', async () => {
      assert.match(await inSandbox('-o', 'addr', 'show', 'dev', 'net1'), /inet 10\.244\.1\.5\/32 /);
      const routes = await inSandbox('-4', 'route', 'show');
      assert.match(routes, /^169\.254\.1\.1 dev net1 scope link/m);
      assert.match(routes, /^203\.0\.113\.0\/24 via 169\.254\.1\.1 dev net1/m);
    });

    test('the interface whose index was taken in the sandbox\'s namespace keeps its routes under its new index', async () => {
      const link = await inSandbox('-o', 'link', 'show', 'dev', 'eth0');
      const taken = await inSandbox('-o', 'link', 'show', 'dev', 'taken');
      assert.notEqual(link.split(':')[0], taken.split(':')[0]);
      assert.match(await inSandbox('-4', 'route', 'show', 'dev', 'eth0'), /^default via 192\.0\.2\.1/m);
    });

    test('a link the kernel does not move (a bridge) is left behind, and the pod\'s interfaces still come along', async () => {
      assert.equal(hook.exitCode, 0, hook.stderr);
      const links = await inSandbox('-o', 'link', 'show');
      assert.doesNotMatch(links, /: br0: /);
      assert.match(links, /: eth0@/);
      assert.match(links, /: net1@/);
    });

    test('the loopback interface of the sandbox\'s namespace is up', async () => {
      assert.match(await inSandbox('-o', 'link', 'show', 'dev', 'lo'), /[<,]UP[,>]/);
    });

    test('the pinned file now names the sandbox\'s namespace, for whatever enters the pod\'s network through it', () => {
      assert.equal(statSync(pinned).ino, statSync(`/proc/${sandbox.pid}/ns/net`).ino);
    });

    test('a pinned namespace that does not exist: exit 1, one line naming it', async () => {
      const missing = `/run/netns/${netns}-missing`;
      const r = await execTool(HOOK, [missing], process.env, { reject: false, input: stateFor(sandbox.pid) });
      assert.equal(r.exitCode, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^sysrunc-adopt-netns: .*${missing}`));
    });
  });
}
