// Safety net: whatever happens to the test process, a rig's daemons must not outlive it.
// - a detached watchdog (rig-clean.sh --after-pid) cleans up after SIGKILL/SIGINT/crash;
// - an 'exit' hook cleans synchronously when the process ends without stop() (forgotten/failed test).
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { execTool } from './exec.ts';
import { RIG_CLEAN_SCRIPT, rigDirs } from './paths.ts';

const watchdogs = new Map<string, number>();
let exitHookInstalled = false;

function onExit(): void {
  const names = [...watchdogs.keys()];
  if (names.length === 0) return;
  spawnSync('bash', [RIG_CLEAN_SCRIPT, ...names], { stdio: 'inherit', timeout: 60_000 });
}

/** Arms the safety net for a rig name. Call before starting any daemon of that rig. */
export function guardRig(name: string): void {
  if (watchdogs.has(name)) return;
  const { lib } = rigDirs(name);
  mkdirSync(lib, { recursive: true });
  const log = openSync(path.join(lib, 'rig-clean.log'), 'a');
  const child = spawn('bash', [RIG_CLEAN_SCRIPT, '--after-pid', String(process.pid), name], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start the rig watchdog for ${name}`);
  watchdogs.set(name, child.pid);
  if (!exitHookInstalled) {
    process.on('exit', onExit);
    exitHookInstalled = true;
  }
}

/** Disarms the safety net after a clean stop(). */
export function releaseRig(name: string): void {
  const pid = watchdogs.get(name);
  if (pid === undefined) return;
  watchdogs.delete(name);
  try {
    process.kill(-pid, 'SIGKILL'); // its own process group: the bash loop and its sleep
  } catch {
    // already gone
  }
}

/** Runs rig-clean.sh for the given rigs; throws with its stderr when something could not be cleaned. */
export async function rigClean(names: readonly string[], opts: { purge?: boolean } = {}): Promise<void> {
  const args = [RIG_CLEAN_SCRIPT, ...(opts.purge === true ? ['--purge'] : []), ...names];
  const r = await execTool('bash', args, process.env, { reject: false, timeoutMs: 120_000 });
  if (r.exitCode !== 0) {
    throw new Error(`rig-clean.sh ${names.join(' ')} failed (exit ${r.exitCode}): ${r.stderr}${r.stdout}`);
  }
}
