// A test file's own manager, scratch dir, busybox rootfs and runc root, for tests that drive
// the launcher (dist/sysrunc) directly, as containerd's shim drives runc (so each call can carry its own fault or
// environment). Everything is removed after the file's tests: containers runc still has are
// deleted through sysrunc, then the runc root, the manager and the scratch dir go.
import { after, before } from 'node:test';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { ensureBusyboxRootfs } from '../rig/images.ts';
import { runToFiles, type Outcome } from '../oci-conformance/fixture.ts';
import { scratchDir } from './helpers.ts';

export interface RuncRootRig {
  readonly runcRoot: string;
  readonly mgr: TestManager;
  readonly work: string;
  readonly rootfs: string;
  /** bin/sysrunc --root <runcRoot> args, pointed at the rig's manager, run in the scratch dir. */
  sysrunc(args: readonly string[], env?: Record<string, string>): Promise<Outcome>;
  /** The ids runc has under the rig's root. */
  runcIds(): string[];
}

export function useRuncRootRig(name: string): RuncRootRig {
  const runcRoot = `/run/sysrunc-test/${name}-runc`;
  let started: { mgr: TestManager; work: string; rootfs: string } | undefined;
  const get = () => {
    if (started === undefined) throw new Error(`the ${name} rig is used before its before() hook ran`);
    return started;
  };
  const rig: RuncRootRig = {
    runcRoot,
    get mgr() {
      return get().mgr;
    },
    get work() {
      return get().work;
    },
    get rootfs() {
      return get().rootfs;
    },
    sysrunc(args, env = {}) {
      const { mgr, work } = get();
      return runToFiles(SYSRUNC, ['--root', runcRoot, ...args], { env: { ...process.env, ...mgr.env, ...env }, cwd: work, input: undefined, dir: work });
    },
    runcIds() {
      return execFileSync('runc', ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    },
  };
  before(async () => {
    const mgr = await startTestManager({ name });
    started = { mgr, work: scratchDir(name), rootfs: await ensureBusyboxRootfs() };
  });
  after(async () => {
    if (started === undefined) return;
    for (const id of rig.runcIds()) await rig.sysrunc(['delete', '--force', id]);
    rmSync(runcRoot, { recursive: true, force: true });
    await started.mgr.dispose();
    rmSync(started.work, { recursive: true, force: true });
  });
  return rig;
}
