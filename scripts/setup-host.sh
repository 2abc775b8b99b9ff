#!/usr/bin/env bash
# Prepares a Debian bookworm host (as root) for sysrunc's end-to-end tests, demo and benchmarks.
# Idempotent; a second run only checks (well under a second without a build).
#   - installs missing apt packages, never leaving a system dockerd/containerd running or enabled
#   - `npm ci` when package-lock.json changed since the last install, `npm run build` when sources did
# usage: scripts/setup-host.sh [--no-npm] [--no-build]
# Node >= 20 must already be installed (bookworm's nodejs is 18).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(runc containerd docker.io busybox-static debootstrap hyperfine iproute2 uidmap acl attr rsync jq ca-certificates strace xfsprogs containernetworking-plugins podman gcc libc6-dev util-linux tini qemu-user lxcfs lintian shellcheck help2man)
NPM_STAMP=node_modules/.sysrunc-lock.sha256
BUILD_STAMP=dist/.sysrunc-build-stamp
do_npm=1
do_build=1
for arg in "$@"; do
  case "$arg" in
    --no-npm) do_npm=0 ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup-host: unknown argument $arg" >&2; exit 2 ;;
  esac
done

t0=$(date +%s%N)
step() { # one line per step, with its duration
  local now; now=$(date +%s%N)
  printf 'setup-host: %-9s %s (%d ms)\n' "$1" "$2" $(((now - t0) / 1000000))
  t0=$now
}
die() { echo "setup-host: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null || echo "setup-host: warning: not Debian bookworm; continuing" >&2

# --- apt packages --------------------------------------------------------------------------------
declare -A status=()
while read -r pkg st; do
  [ -n "$pkg" ] && status[$pkg]=$st
done <<<"$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)"
missing=()
for p in "${PACKAGES[@]}"; do
  [ "${status[$p]:-}" = ii ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  step packages "all ${#PACKAGES[@]} present"
else
  # The docker.io/containerd/lxcfs maintainer scripts try to start their daemons; deny that during the
  # install (unless the host already has a policy, which we leave alone).
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# sysrunc setup-host.sh: no service starts during package installs\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ] ||
     ! apt-get install -y -qq --no-install-recommends --dry-run "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    step apt "apt-get update"
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ $own_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  step packages "installed: ${missing[*]}"

  # Services of what we just installed stay disabled: the rig runs private daemons only.
  disabled=()
  for m in "${missing[@]}"; do
    case "$m" in
      docker.io) units=(docker.service docker.socket); initd=docker ;;
      containerd) units=(containerd.service); initd=containerd ;;
      # sysrunc-mgr runs its own lxcfs, on a path under its run dir.
      lxcfs) units=(lxcfs.service); initd=lxcfs ;;
      *) continue ;;
    esac
    if command -v systemctl >/dev/null 2>&1; then
      systemctl disable --quiet "${units[@]}" 2>/dev/null || true
    else
      # No systemctl (systemd not installed), yet the postinst enabled the units via symlinks.
      for u in "${units[@]}"; do
        find /etc/systemd/system -path '*.wants/*' -name "$u" -type l -delete 2>/dev/null || true
      done
    fi
    if [ -x "/etc/init.d/$initd" ] && command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d "$initd" disable >/dev/null 2>&1 || true
    fi
    disabled+=("$m")
  done
  [ ${#disabled[@]} -gt 0 ] && step services "disabled system services of: ${disabled[*]}"
fi

# A system daemon is never touched here, but say so: dockerd would otherwise silently prefer a
# system containerd socket, and stray daemons skew benchmarks.
running=()
for d in dockerd containerd; do
  for pid in $(pidof "$d" 2>/dev/null || true); do
    grep -qaF /run/sysrunc-test/ "/proc/$pid/cmdline" 2>/dev/null || running+=("$d:$pid")
  done
done
if [ ${#running[@]} -gt 0 ]; then
  echo "setup-host: warning: system daemons running (left alone): ${running[*]}" >&2
fi
step daemons "${#running[@]} system dockerd/containerd running"

# --- kernel / filesystem prerequisites -----------------------------------------------------------
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "overlay filesystem unavailable"
mkdir -p /var/lib/sysrunc-test /var/cache/sysrunc-test
fstype=$(stat -f -c %T /var/lib/sysrunc-test)
case "$fstype" in
  overlayfs|tmpfs) die "/var/lib/sysrunc-test is on $fstype; dockerd's overlay2 data root needs a real fs" ;;
esac
if [ ! -f /sys/fs/cgroup/cgroup.controllers ] && [ ! -d /sys/fs/cgroup/memory ]; then
  command -v cgroupfs-mount >/dev/null 2>&1 && cgroupfs-mount
  [ -d /sys/fs/cgroup/memory ] || die "no cgroup hierarchy mounted under /sys/fs/cgroup"
fi
cgver=v1; [ -f /sys/fs/cgroup/cgroup.controllers ] && cgver=v2
step kernel "overlay ok, cgroup $cgver, /var/lib/sysrunc-test on $fstype"

# --- node dependencies ---------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node not found; install Node.js >= 20 (e.g. from nodejs.org or NodeSource)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $(node --version) is too old; need >= 20"

if [ $do_npm = 1 ]; then
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  have=$(cat "$NPM_STAMP" 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    step npm "node_modules up to date"
  elif [ -z "$have" ] && [ -d node_modules ] && npm ls --all >/dev/null 2>&1; then
    # Installed before this script kept a stamp, and consistent: adopt it rather than reinstall.
    echo "$want" >"$NPM_STAMP"
    step npm "node_modules consistent; stamped"
  else
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    echo "$want" >"$NPM_STAMP"
    step npm "npm ci"
  fi
fi

if [ $do_build = 1 ] && [ "$(node -p 'require("./package.json").scripts?.build ?? ""')" != "" ]; then
  newer=""
  if [ -f "$BUILD_STAMP" ]; then
    newer=$(find src bin scripts/build.mjs package.json package-lock.json -newer "$BUILD_STAMP" -print -quit 2>/dev/null || true)
  fi
  if [ -f "$BUILD_STAMP" ] && [ -z "$newer" ]; then
    step build "dist up to date"
  else
    npm run --silent build >/dev/null
    mkdir -p dist && touch "$BUILD_STAMP"
    step build "npm run build"
  fi
fi
