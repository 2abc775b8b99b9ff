// A chown of a big tree (a rootfs clone: tens of thousands of metadata copy-ups) in a child
// process, so the manager's event loop keeps serving other containers meanwhile. The child is the
// manager's own entry point with --internal-chown-tree: same code, same journal.
import { spawn } from 'node:child_process';
import { chownTreeByOffset, type ChownOptions, type ChownReport, type IdOffset } from './chown-tree.ts';

export const INTERNAL_CHOWN_FLAG = '--internal-chown-tree';

export interface ChownJob {
  readonly root: string;
  readonly offset: IdOffset;
  readonly journalPath: string;
  readonly direction: ChownOptions['direction'];
  readonly size: number;
}

/** How a big chown is run: in this process (tests, tools) or in a child (the daemon). */
export type ChownRunner = (job: ChownJob) => Promise<ChownReport>;

function runChownJob(job: ChownJob): ChownReport {
  return chownTreeByOffset(job.root, job.offset, { journalPath: job.journalPath, direction: job.direction, range: { size: job.size } });
}

export const chownInProcess: ChownRunner = (job) => Promise.resolve(runChownJob(job));

/** Runs the job in `node <entry> --internal-chown-tree <job>`; the child's one-line error becomes ours. */
export function chownInChild(entry: string): ChownRunner {
  return (job) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [entry, INTERNAL_CHOWN_FLAG, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', (e) => reject(new Error(`chown ${job.root}: cannot start ${entry}: ${e.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) {
          try {
            resolve(JSON.parse(out) as ChownReport);
          } catch {
            reject(new Error(`chown ${job.root}: the child's report is not JSON`));
          }
          return;
        }
        reject(new Error(err.trim().split('\n').pop() || `chown ${job.root}: child ended with ${signal ?? `exit code ${String(code)}`}`));
      });
    });
}

/** The child's side: argv [json]; prints the report as JSON, or one error line and exits 1. */
export function runInternalChown(json: string | undefined): never {
  try {
    const report = runChownJob(JSON.parse(json ?? '') as ChownJob);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
