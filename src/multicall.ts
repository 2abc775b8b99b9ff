// One Bun-compiled binary (dist/sysrunc-multi, built by scripts/compile-binaries.mjs) that is each
// of sysrunc's long-lived programs, busybox-style: one ~100 MB runtime instead of four. It is run
// through a link named after the program (dist/sysrunc-mgr -> sysrunc-multi), or with the program's
// name or path as its first argument (`sysrunc-multi sysrunc-mgr --socket ...`: how a program starts
// a child of itself, see ownership/chown-child.ts).
import path from 'node:path';

const PROGRAMS: Record<string, () => Promise<unknown>> = {
  'sysrunc-mgr': () => import('./manager/main.ts'),
  'sysrunc-depotd': () => import('./depot/main.ts'),
  'sysrunc-tenantd': () => import('./tenants/main.ts'),
  'sysrunc-ctl': () => import('./sysrunc-ctl/main.ts'),
};

function programName(): string | undefined {
  const byLink = path.basename(process.argv0);
  if (PROGRAMS[byLink] !== undefined) return byLink;
  const first = process.argv[2];
  if (first === undefined || PROGRAMS[path.basename(first)] === undefined) return undefined;
  process.argv.splice(2, 1);
  return path.basename(first);
}

const name = programName();
const start = name === undefined ? undefined : PROGRAMS[name];
if (name === undefined || start === undefined) {
  process.stderr.write(`sysrunc-multi: run as one of ${Object.keys(PROGRAMS).join(', ')} (a link of that name, or the name as first argument)\n`);
  process.exit(2);
}
// The program's own path, as under Node (process.argv[1] = its entry file): what it derives its
// install's top from (self-path.ts) and runs to start a child of itself.
process.argv[1] = path.join(path.dirname(process.execPath), name);
await start();
