#!/usr/bin/env node
// `npm run package`: builds dist/sysrunc_<version>_amd64.deb with dpkg-deb and checks it with
// lintian. Everything in it is compiled (scripts/build.mjs: the per-call binary and the static C
// helpers; scripts/compile-binaries.mjs: the daemons and sysrunc-ctl) or POSIX sh: nothing at run
// time needs Node, npm or a Go development package.
//
// Layout (Debian's): /usr/bin/sysrunc (the runtime path engines are given: the C launcher
// dist/sysrunc, with bin/sysrunc beside it as its fallback), /usr/bin/sysrunc-ctl,
// /usr/sbin/sysrunc-{mgr,depotd,tenantd}, all links into /usr/lib/sysrunc/{bin,dist}/ (the same
// tree as a checkout, so each program finds its siblings); /lib/systemd/system/ units;
// /etc/sysrunc/config.json (conffile); maintainer scripts from deploy/debian/.
//
//   node scripts/package.mjs [--no-lintian]
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { writeManPages } from './man-pages.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const fail = (msg) => {
  console.error(`package: ${msg}`);
  process.exit(1);
};
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
  return r;
};

const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const inSource = /SYSRUNC_VERSION = '([^']+)'/.exec(readFileSync(path.join(root, 'src/common/version.ts'), 'utf8'))?.[1];
if (inSource !== version) fail(`package.json says version ${version}, src/common/version.ts ${inSource}: make them equal`);

run(process.execPath, ['scripts/build.mjs']);
run(process.execPath, ['scripts/compile-binaries.mjs']);
// The programs the build makes in dist/ (scripts/build.mjs, compile-binaries.mjs), each one installed.
const distPrograms = ['sysrunc', 'sysrunc-call', 'sysrunc-depot-init', 'sysrunc-depot-supervise', 'sysrunc-bundle-exec', 'sysrunc-prepare-call', 'sysrunc-delete-call', 'sysrunc-exec-grant', 'sysrunc-mount-listener', 'sysrunc-adopt-netns', 'sysrunc-delegate-cgroups'];
for (const f of distPrograms) {
  if (spawnSync('test', ['-x', path.join(root, 'dist', f)]).status !== 0) fail(`dist/${f} was not built (see the build's warnings)`);
}

const name = `sysrunc_${version}_amd64`;
const stage = path.join(root, 'dist', 'deb', name);
rmSync(path.join(root, 'dist', 'deb'), { recursive: true, force: true });
const dir = (rel, mode = 0o755) => {
  const d = path.join(stage, rel);
  mkdirSync(d, { recursive: true });
  chmodSync(d, mode);
  return d;
};
const put = (from, to, mode) => {
  const dest = path.join(stage, to);
  mkdirSync(path.dirname(dest), { recursive: true });
  copyFileSync(path.join(root, from), dest);
  chmodSync(dest, mode);
};
const link = (target, at) => {
  mkdirSync(path.dirname(path.join(stage, at)), { recursive: true });
  symlinkSync(target, path.join(stage, at));
};

// The install tree: /usr/lib/sysrunc/{bin,dist}.
for (const f of ['sysrunc', 'sysrunc-delegate-cgroups', 'sysrunc-adopt-netns']) put(`bin/${f}`, `usr/lib/sysrunc/bin/${f}`, 0o755);
for (const f of [...distPrograms, 'sysrunc-multi']) put(`dist/${f}`, `usr/lib/sysrunc/dist/${f}`, 0o755);
put('dist/VERSION', 'usr/lib/sysrunc/dist/VERSION', 0o644);
put('config/journald-sysrunc-kmsg.conf', 'usr/lib/sysrunc/config/journald-sysrunc-kmsg.conf', 0o644);
for (const p of ['sysrunc-mgr', 'sysrunc-depotd', 'sysrunc-tenantd', 'sysrunc-ctl']) link('sysrunc-multi', `usr/lib/sysrunc/dist/${p}`);
// The C launcher finds its install (and bin/sysrunc, where it hands calls on) from /proc/self/exe.
link('../lib/sysrunc/dist/sysrunc', 'usr/bin/sysrunc');
link('../lib/sysrunc/dist/sysrunc-ctl', 'usr/bin/sysrunc-ctl');
for (const p of ['sysrunc-mgr', 'sysrunc-depotd', 'sysrunc-tenantd']) link(`../lib/sysrunc/dist/${p}`, `usr/sbin/${p}`);

for (const u of ['sysrunc-mgr', 'sysrunc-depotd', 'sysrunc-tenantd']) put(`deploy/systemd/${u}.service`, `lib/systemd/system/${u}.service`, 0o644);
put('config/sysrunc.json', 'etc/sysrunc/config.json', 0o644);

dir('usr/share/doc/sysrunc');
put('deploy/debian/copyright', 'usr/share/doc/sysrunc/copyright', 0o644);
put('README.md', 'usr/share/doc/sysrunc/README.md', 0o644);
const date = new Date().toUTCString().replace('GMT', '+0000');
const changelog = readFileSync(path.join(root, 'deploy/debian/changelog'), 'utf8').replaceAll('@VERSION@', version).replace('@DATE@', date);
writeFileSync(path.join(stage, 'usr/share/doc/sysrunc/changelog.gz'), gzipSync(changelog, { level: 9 }));
// Manual pages from the commands' own --help (help2man; scripts/man-pages.mjs).
try {
  writeManPages(root, stage, version);
} catch (err) {
  fail(err.message);
}
put('deploy/debian/lintian-overrides', 'usr/share/lintian/overrides/sysrunc', 0o644);

// DEBIAN/: control (with the installed size), conffiles, maintainer scripts.
dir('DEBIAN');
const kb = spawnSync('du', ['-sk', '--exclude=DEBIAN', stage], { encoding: 'utf8' }).stdout.split('\t')[0];
writeFileSync(path.join(stage, 'DEBIAN/control'), readFileSync(path.join(root, 'deploy/debian/control.in'), 'utf8').replaceAll('@VERSION@', version).replace('@SIZE@', kb));
put('deploy/debian/conffiles', 'DEBIAN/conffiles', 0o644);
for (const s of ['postinst', 'prerm', 'postrm']) put(`deploy/debian/${s}`, `DEBIAN/${s}`, 0o755);
// md5sums, as dpkg-deb does not write them (lintian expects them).
const files = spawnSync('find', ['.', '-path', './DEBIAN', '-prune', '-o', '-type', 'f', '-printf', '%P\\n'], { cwd: stage, encoding: 'utf8' }).stdout.trim().split('\n').sort();
const sums = spawnSync('md5sum', files, { cwd: stage, encoding: 'utf8', maxBuffer: 1 << 24 });
writeFileSync(path.join(stage, 'DEBIAN/md5sums'), sums.stdout);
chmodSync(path.join(stage, 'DEBIAN/md5sums'), 0o644);

const deb = path.join(root, 'dist', `${name}.deb`);
// gzip: xz would take minutes for the ~220 MB of compiled runtimes on a small machine.
run('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', stage, deb]);

if (!process.argv.includes('--no-lintian')) {
  if (spawnSync('sh', ['-c', 'command -v lintian'], { stdio: 'ignore' }).status !== 0) fail('lintian is missing (apt-get install lintian; scripts/setup-host.sh installs it)');
  // Errors fail the build; warnings are printed.
  run('lintian', ['--fail-on', 'error', '--no-tag-display-limit', deb]);
}
console.log(`built ${path.relative(root, deb)}`);
