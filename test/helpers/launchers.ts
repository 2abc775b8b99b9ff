// The two launchers: bin/sysrunc (POSIX sh, the reference, complete) and dist/sysrunc (C,
// src/runtime-call/native/launcher.c: the path engines are given, the same for the calls made on
// every container and bin/sysrunc for the rest). Tests that drive a launcher run against both and
// hold them to the same results. dist/sysrunc needs node scripts/build.mjs.
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';

export const SCRIPT_LAUNCHER = path.join(REPO_ROOT, 'bin', 'sysrunc');
export const C_LAUNCHER = path.join(REPO_ROOT, 'dist', 'sysrunc');

export interface Launcher {
  /** As tests name it: its path in the tree. */
  readonly name: 'bin/sysrunc' | 'dist/sysrunc';
  readonly path: string;
}

export const LAUNCHERS: readonly Launcher[] = [
  { name: 'bin/sysrunc', path: SCRIPT_LAUNCHER },
  { name: 'dist/sysrunc', path: C_LAUNCHER },
];
