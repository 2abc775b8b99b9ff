#!/usr/bin/env bash
# Prebuild the Debian system-container test rootfs caches (test/rig/debian-images.ts), e.g. in CI
# before the test suites run. Needs root and Debian's apt mirror; prints the time of every step.
#
# usage: scripts/build-test-images.sh [--import] [--check] [--prune] [FLAVOR...]
#   FLAVOR     dind, systemd (default: both)
#   --import   also import the images into a private rig dockerd (measures `docker import`;
#              the rig's data root is purged afterwards, so this is a measurement, not a cache)
#   --check    --import, then run `dockerd --version` / `systemctl --version` in them (plain runc)
#   --prune    delete cached debian-* trees of older recipes (keeps the .deb cache)
# Environment: SYSRUNC_TEST_CACHE (cache base, default /var/cache/sysrunc-test),
#              SYSRUNC_TEST_DEBIAN_MIRROR / SYSRUNC_TEST_DEBIAN_SECURITY_MIRROR (default: host apt sources).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "build-test-images: must run as root (debootstrap, chroot, mounts)" >&2
  exit 1
fi

import=0 check=0 prune=0
flavors=()
for arg in "$@"; do
  case "$arg" in
    --import) import=1 ;;
    --check) import=1 check=1 ;;
    --prune) prune=1 ;;
    dind|systemd) flavors+=("$arg") ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-test-images: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ ${#flavors[@]} -gt 0 ] || flavors=(dind systemd)

export BTI_FLAVORS="${flavors[*]}" BTI_IMPORT=$import BTI_CHECK=$check BTI_PRUNE=$prune
# shellcheck disable=SC2016 # the program is JavaScript: its ${...} are not the shell's
exec node --import tsx --input-type=module -e '
import { performance } from "node:perf_hooks";
import { ensureDebianImage, ensureDebianRootfs, pruneDebianCache, readDebianStamp } from "./test/rig/debian-images.ts";

const t0 = performance.now();
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const stamp = () => `[${secs(performance.now() - t0).padStart(8)}]`;
const log = (line) => console.log(`${stamp()} ${line}`);
const flavors = process.env.BTI_FLAVORS.split(" ");

for (const flavor of flavors) {
  const start = performance.now();
  const rootfs = await ensureDebianRootfs(flavor, { log });
  const s = await readDebianStamp(flavor);
  log(`${flavor}: rootfs ${rootfs} (${(s.sizeBytes / 1e6).toFixed(0)} MB, built ${s.builtAt}) ready in ${secs(performance.now() - start)}`);
}

if (process.env.BTI_IMPORT === "1") {
  const { startDockerd } = await import("./test/rig/dockerd.ts");
  const daemon = await startDockerd({ name: `build-images-${process.pid}`, runtimes: {} });
  let failed = false;
  try {
    for (const flavor of flavors) {
      const start = performance.now();
      const id = await ensureDebianImage(daemon, flavor, undefined, { log });
      log(`${flavor}: docker import ${id.slice(0, 19)} in ${secs(performance.now() - start)}`);
    }
    const size = await daemon.docker(["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", "sysrunc-test/*"]);
    for (const line of size.stdout.trim().split("\n")) log(`image ${line}`);
    if (process.env.BTI_CHECK === "1") {
      const checks = { dind: [["dockerd", "--version"], ["containerd", "--version"], ["runc", "--version"], ["busybox", "true"]], systemd: [["systemctl", "--version"], ["readlink", "-f", "/sbin/init"]] };
      for (const flavor of flavors) {
        for (const cmd of checks[flavor]) {
          const r = await daemon.docker(["run", "--rm", `sysrunc-test/${flavor}:local`, ...cmd], { reject: false });
          const ok = r.exitCode === 0;
          failed ||= !ok;
          log(`check ${flavor}: ${cmd.join(" ")} -> ${ok ? "ok" : `FAILED (${r.exitCode})`}: ${(r.stdout + r.stderr).trim().split("\n")[0]}`);
        }
      }
    }
  } finally {
    await daemon.stop({ purge: true });
  }
  if (failed) process.exitCode = 1;
}

if (process.env.BTI_PRUNE === "1") {
  for (const name of await pruneDebianCache()) log(`pruned ${name}`);
}
log(`done in ${secs(performance.now() - t0)}`);
'
