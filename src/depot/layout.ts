// The depot: the source of truth for containers and their processes. No state lives anywhere else,
// so a restarted daemon knows everything by reading it back.
//
//   <depot>/<container>/config.json       the bundle (root.path points at the caller's rootfs)
//                        pidfile           host pid of the keep-alive init (written by runc)
//                        log               runc's log (JSON lines)
//                        processes/<process>/
//                           process.json   the OCI process spec handed to `runc exec --process`
//                           pid            host pid of the process (written by runc)
//                           supervisor.pid the supervisor's pid; supervisor.log its errors
//                           stdin, control FIFOs the supervisor holds while the process runs
//                           stdout, stderr everything the process wrote
//                           exitcode       written last, atomically, by the supervisor
// Lookup is a stat, listing a readdir.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DepotError } from '../depot-api/v1.ts';

export class Depot {
  constructor(readonly root: string) {}

  containerDir(id: string): string {
    return path.join(this.root, safeName(id));
  }

  bundleConfig(id: string): string {
    return path.join(this.containerDir(id), 'config.json');
  }

  processesDir(id: string): string {
    return path.join(this.containerDir(id), 'processes');
  }

  processDir(container: string, process: string): string {
    return path.join(this.processesDir(container), safeName(process));
  }

  /** The container's directory, or a not-found error. */
  mustExist(id: string): string {
    const dir = this.containerDir(id);
    if (!isDir(dir)) throw new DepotError('not-found', `container ${id}: ${dir} does not exist`);
    return dir;
  }

  mustExistProcess(container: string, process: string): string {
    this.mustExist(container);
    const dir = this.processDir(container, process);
    if (!isDir(dir)) throw new DepotError('not-found', `process ${process} of container ${container}: ${dir} does not exist`);
    return dir;
  }

  containers(): string[] {
    return listDirs(this.root);
  }

  processes(container: string): string[] {
    return listDirs(this.processesDir(container));
  }
}

/** Refuses anything that is not a plain directory name (the API validates too; this is the last line). */
function safeName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new DepotError('invalid-request', `${JSON.stringify(name)} is not a valid name in the depot`);
  }
  return name;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`readdir ${dir}: ${(err as Error).message}`);
  }
}

/** A pid from a pidfile (runc writes it without a newline), or undefined when absent or empty. */
export function readPid(file: string): number | undefined {
  const text = readOptional(file);
  const pid = text === undefined ? NaN : Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`read ${file}: ${(err as Error).message}`);
  }
}

/** Alive and not a zombie (a zombie answers kill(0) too). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
