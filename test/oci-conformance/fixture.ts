// Side-by-side harness: the same bundle run by plain runc and by sysrunc (each with its own
// --root), so a test compares exit codes, stdout and state documents of the two.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { execa } from 'execa';
import { ensureBusyboxRootfs, makeBundle, type Bundle } from '../rig/images.ts';
import { bins } from '../rig/paths.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';

export interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Runtime {
  readonly name: 'runc' | 'sysrunc';
  readonly root: string;
  /** Runs the runtime with `--root <its root>` prepended, unless `noRoot`. */
  cli(args: readonly string[], opts?: { input?: string; cwd?: string; env?: Record<string, string>; noRoot?: boolean }): Promise<Outcome>;
}

export interface Fixture {
  readonly manager: TestManager;
  readonly runc: Runtime;
  readonly sysrunc: Runtime;
  readonly work: string;
  /** A fresh bundle of the busybox rootfs running `args`. */
  bundle(name: string, args: string[]): Promise<Bundle>;
  dispose(): Promise<void>;
}

export async function startFixture(name: string, managerArgs: readonly string[] = []): Promise<Fixture> {
  const manager = await startTestManager({ name, extraArgs: managerArgs });
  const work = mkdtempSync(path.join('/var/tmp', `sysrunc-conf-${name}-`));
  const rootfs = await ensureBusyboxRootfs();
  const make = (runtimeName: 'runc' | 'sysrunc', bin: string): Runtime => {
    const root = path.join('/run/sysrunc-test', `conf-${name}-${runtimeName}`);
    return {
      name: runtimeName,
      root,
      async cli(args, opts = {}) {
        const argv = opts.noRoot ? [...args] : ['--root', root, ...args];
        return runToFiles(bin, argv, { env: { ...process.env, ...manager.env, ...opts.env }, cwd: opts.cwd ?? work, input: opts.input, dir: work });
      },
    };
  };
  return {
    manager,
    work,
    runc: make('runc', bins.runc),
    sysrunc: make('sysrunc', SYSRUNC),
    bundle: (bundleName, args) => makeBundle(path.join(work, bundleName), rootfs, args),
    async dispose() {
      for (const rt of ['runc', 'sysrunc'] as const) {
        const root = path.join('/run/sysrunc-test', `conf-${name}-${rt}`);
        const list = await execa(bins.runc, ['--root', root, 'list', '-q'], { reject: false });
        for (const id of String(list.stdout).split('\n').filter(Boolean)) {
          await execa(rt === 'runc' ? bins.runc : SYSRUNC, ['--root', root, 'delete', '--force', id], { reject: false, env: manager.env });
        }
        rmSync(root, { recursive: true, force: true });
      }
      await manager.dispose();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** A fresh bundle of the busybox rootfs whose process sleeps (a container that stays up). */
export async function sleepingBundle(fx: Fixture, name: string): Promise<string> {
  return (await fx.bundle(name, ['sleep', '1000'])).bundle;
}

/** A sleeping bundle whose config.json is the stock one changed by `edit`. */
export async function editedBundle(fx: Fixture, name: string, edit: (spec: Record<string, unknown>) => void): Promise<string> {
  const dir = await sleepingBundle(fx, name);
  const config = path.join(dir, 'config.json');
  const spec = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  edit(spec);
  writeFileSync(config, `${JSON.stringify(spec, null, 2)}\n`);
  return dir;
}

/** A state document with the fields that differ between two runs of the same bundle blanked. */
export function comparableState(stdout: string): Record<string, unknown> {
  const state = JSON.parse(stdout) as Record<string, unknown>;
  return { ...state, id: '<id>', pid: typeof state.pid === 'number' && state.pid > 0 ? '<pid>' : state.pid, bundle: '<bundle>', rootfs: '<rootfs>', created: '<created>' };
}

/**
 * Runs a command with stdout/stderr going to real files, not pipes: after `create` the container's
 * init holds runc's stdio open, so a pipe reader would wait for it forever.
 */
export function runToFiles(
  bin: string,
  argv: readonly string[],
  o: { env: NodeJS.ProcessEnv; cwd: string; input: string | undefined; dir: string },
): Promise<Outcome> {
  const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const outPath = path.join(o.dir, `.out-${tag}`);
  const errPath = path.join(o.dir, `.err-${tag}`);
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { env: o.env, cwd: o.cwd, stdio: [o.input === undefined ? 'ignore' : 'pipe', out, err] });
    closeSync(out);
    closeSync(err);
    if (o.input !== undefined) child.stdin?.end(o.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const result = { exitCode: code ?? 128 + (signal === null ? 0 : 9), stdout: readFileSync(outPath, 'utf8'), stderr: readFileSync(errPath, 'utf8') };
      rmSync(outPath, { force: true });
      rmSync(errPath, { force: true });
      resolve(result);
    });
  });
}
