// The stack VMs' features check (scripts/stacks/guest-checks.sh runs it with tsx, inside the guest):
// `sysrunc features` must be the stack's own runc's answer, with only sysrunc's additions: every
// field runc reports is there unchanged, except that linux.namespaces may gain namespaces and
// annotations may gain io.sysrunc.* keys (linux.mountExtensions is runc's, or absent from runc and
// then idmap disabled). Prints one line; exit 0 = pass.
// usage: features-check.ts <sysrunc> <runc>
import { execFileSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';

type Json = Record<string, unknown>;
const [sysrunc, runc] = process.argv.slice(2);
if (sysrunc === undefined || runc === undefined) throw new Error('usage: features-check.ts <sysrunc> <runc>');

const features = (binary: string): Json => JSON.parse(execFileSync(binary, ['features'], { encoding: 'utf8' })) as Json;
const theirs = features(runc);
const ours = features(sysrunc);
const differences: string[] = [];

function sameFields(path: string, a: Json, b: Json, except: readonly string[]): void {
  for (const key of Object.keys(a)) {
    if (except.includes(key)) continue;
    if (!isDeepStrictEqual(a[key], b[key])) differences.push(`${path}${key}`);
  }
}
sameFields('', theirs, ours, ['linux', 'annotations']);
const theirLinux = (theirs.linux ?? {}) as Json;
const ourLinux = (ours.linux ?? {}) as Json;
sameFields('linux.', theirLinux, ourLinux, ['namespaces', 'mountExtensions']);
const ourNamespaces = (ourLinux.namespaces ?? []) as string[];
for (const ns of (theirLinux.namespaces ?? []) as string[]) if (!ourNamespaces.includes(ns)) differences.push(`linux.namespaces lost ${ns}`);
if (theirLinux.mountExtensions !== undefined && !isDeepStrictEqual(theirLinux.mountExtensions, ourLinux.mountExtensions)) differences.push('linux.mountExtensions');
const ourAnnotations = (ours.annotations ?? {}) as Record<string, string>;
for (const [key, value] of Object.entries((theirs.annotations ?? {}) as Record<string, string>)) {
  if (ourAnnotations[key] !== value) differences.push(`annotations.${key}`);
}
const added = Object.keys(ourAnnotations).filter((k) => !(k in ((theirs.annotations ?? {}) as Json)));
if (added.some((k) => !k.startsWith('io.sysrunc.'))) differences.push(`annotations added outside io.sysrunc.: ${added.join(',')}`);

if (differences.length > 0) {
  console.log(`sysrunc features differs from ${runc} features in: ${differences.join(', ')}`);
  process.exit(1);
}
const version = ((theirs.annotations ?? {}) as Record<string, string>)['org.opencontainers.runc.version'] ?? '?';
console.log(`runc ${version}'s answer (OCI ${String(theirs.ociVersionMin)}-${String(theirs.ociVersionMax)}), plus namespaces ${ourNamespaces.filter((n) => !((theirLinux.namespaces ?? []) as string[]).includes(n)).join(',') || 'none'} and ${added.join(',')}`);
