// The package's manual pages, generated with help2man from each installed command's own --help
// (and --version), with the sections --help cannot say (NAME, DESCRIPTION, FILES, SEE ALSO) from
// deploy/debian/man/<command>.h2m. Run on the staged tree, so that defaults derived from where a
// program lies read /usr/lib/sysrunc/..., as installed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
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

/** Subcommands whose own --help goes into the command's page, verbatim (their options are not in the top-level --help). */
const SUBCOMMANDS = { 'sysrunc-ctl': [['install', 'docker'], ['install', 'containerd']] };

/** Text as a roff no-fill block: backslashes escaped, no line read as a request. */
const verbatim = (text) => `.nf\n${text.trimEnd().replaceAll('\\', '\\e').split('\n').map((l) => `\\&${l}`).join('\n')}\n.fi\n`;

function include(root, stage, command, rel) {
  let text = readFileSync(path.join(root, 'deploy/debian/man', `${command}.h2m`), 'utf8');
  for (const args of SUBCOMMANDS[command] ?? []) {
    const r = spawnSync(path.join(stage, rel), [...args, '--help'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} --help failed: ${(r.stderr || r.error?.message || '').trim()}`);
    text += `\n[${args.join(' ').toUpperCase()}]\n${verbatim(r.stdout.replaceAll(stage, ''))}`;
  }
  return text;
}

/** Writes usr/share/man/man<section>/<command>.<section>.gz into the stage; throws naming what failed. */
export function writeManPages(root, stage, version) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-man-'));
  try {
    for (const [command, rel, section] of MAN_PAGES) writeManPage(root, stage, version, tmp, command, rel, section);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function writeManPage(root, stage, version, tmp, command, rel, section) {
  const h2m = path.join(tmp, `${command}.h2m`);
  writeFileSync(h2m, include(root, stage, command, rel));
  const r = spawnSync('help2man', [
    '--no-info', '--no-discard-stderr', `--section=${section}`, `--version-string=${version}`,
    `--include=${h2m}`,
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
