// The package's manual pages, generated with help2man from each installed command's own --help
// (and --version), with the sections --help cannot say (NAME, DESCRIPTION, FILES, SEE ALSO) from
// deploy/debian/man/<command>.h2m. Run on the staged tree, so that defaults derived from where a
// program lies read /usr/lib/sysrunc/..., as installed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** Command, its path in the package, its manual section. */
export const MAN_PAGES = [
  ['sysrunc', 'usr/lib/sysrunc/bin/sysrunc', 1],
  ['sysrunc-ctl', 'usr/lib/sysrunc/dist/sysrunc-ctl', 1],
  ['sysrunc-mgr', 'usr/lib/sysrunc/dist/sysrunc-mgr', 8],
  ['sysrunc-depotd', 'usr/lib/sysrunc/dist/sysrunc-depotd', 8],
  ['sysrunc-tenantd', 'usr/lib/sysrunc/dist/sysrunc-tenantd', 8],
];

/** Writes usr/share/man/man<section>/<command>.<section>.gz into the stage; throws naming what failed. */
export function writeManPages(root, stage, version) {
  for (const [command, rel, section] of MAN_PAGES) {
    const r = spawnSync('help2man', [
      '--no-info', '--no-discard-stderr', `--section=${section}`, `--version-string=${version}`,
      `--include=${path.join(root, 'deploy/debian/man', `${command}.h2m`)}`,
      '--source=sysrunc', `--manual=${section === 1 ? 'User Commands' : 'System Administration'}`,
      path.join(stage, rel),
    ], { encoding: 'utf8', env: { ...process.env, COLUMNS: '100', SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH ?? String(Math.floor(Date.now() / 1000)) } });
    if (r.status !== 0) throw new Error(`help2man ${command}: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]} (apt-get install help2man)`);
    // The staged path in defaults (the depot's --sysrunc, say) becomes the installed one.
    const page = r.stdout.replaceAll(stage, '').replaceAll(stage.replaceAll('-', '\\-'), '');
    const dir = path.join(stage, 'usr/share/man', `man${section}`);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(path.join(dir, `${command}.${section}.gz`), gzipSync(page, { level: 9 }), { mode: 0o644 });
  }
}
