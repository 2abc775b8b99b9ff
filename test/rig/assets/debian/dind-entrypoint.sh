#!/bin/sh
# dind-entrypoint: start dockerd in the background inside a (system) container, then exec "$@"
# (default: wait for dockerd). Installed as /usr/local/bin/dind-entrypoint in sysrunc-test/dind:local.
#
# Environment knobs (all optional):
#   DIND_IPTABLES=true|false   false adds --iptables=false --ip-masq=false --bridge=none
#                              (for when iptables cannot work inside the container). Default true.
#   DIND_IPTABLES_BACKEND=nft|legacy
#                              switches the iptables alternatives before dockerd starts (Debian
#                              bookworm defaults to nft).
#   DIND_STORAGE_DRIVER=name   overrides "storage-driver" of /etc/docker/daemon.json (default overlay2).
#   DIND_DOCKERD_ARGS="..."    extra dockerd flags (word-split).
#   DIND_TMPFS_DATA_ROOT=auto|yes|no
#                              auto (default): mount a tmpfs on /var/lib/docker when it sits on
#                              overlayfs (overlay2 cannot use an overlayfs as its upper layer).
#
# Mounts are only made when missing; failures are logged and dockerd is started anyway, so its
# own log (/var/log/dockerd.log) says what is really wrong.
set -u

# PID 1 must reap the orphans dockerd leaves behind (containerd shims re-parent to it), and docker
# stop's SIGTERM must reach dockerd too, so that it shuts down cleanly: re-run this script under
# tini first. tini -g forwards signals to its child's whole process group, dockerd included.
if [ $$ -eq 1 ] && command -v tini >/dev/null 2>&1; then
  exec tini -s -g -- "$0" "$@"
fi

log() { echo "dind-entrypoint: $*" >&2; }

is_mountpoint() { # path; mountinfo field 5, octal escapes not handled (none of ours need them)
  awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo 2>/dev/null
}

fstype() { stat -f -c %T "$1" 2>/dev/null || echo unknown; }

try_mount() { # target, mount args...
  t=$1; shift
  mkdir -p "$t" 2>/dev/null
  mount "$@" "$t" 2>/dev/null || log "could not mount $t ($*)"
}

[ -r /proc/self/mountinfo ] || mount -t proc proc /proc 2>/dev/null || log "could not mount /proc"
is_mountpoint /sys || try_mount /sys -t sysfs sysfs
is_mountpoint /dev/shm || try_mount /dev/shm -t tmpfs -o nosuid,nodev,mode=1777 shm
is_mountpoint /dev/pts || try_mount /dev/pts -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts
is_mountpoint /tmp || try_mount /tmp -t tmpfs -o nosuid,nodev,mode=1777 tmpfs
if [ -d /sys/kernel/security ] && ! is_mountpoint /sys/kernel/security; then
  mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true # only for AppArmor detection
fi

# cgroups: mount them when the runtime gave us none at all.
if ! is_mountpoint /sys/fs/cgroup; then
  # /proc/cgroups hierarchy column: 0 for every controller means a pure cgroup v2 host.
  if ! awk 'NR > 1 && $2 != 0 { v1 = 1 } END { exit !v1 }' /proc/cgroups; then
    try_mount /sys/fs/cgroup -t cgroup2 cgroup2
  else
    try_mount /sys/fs/cgroup -t tmpfs -o mode=755 cgroup
    # shellcheck disable=SC2013 # cgroup controller names are single words
    for c in $(awk 'NR > 1 && $2 != 0 && $4 == 1 { print $1 }' /proc/cgroups); do
      try_mount "/sys/fs/cgroup/$c" -t cgroup -o "$c" cgroup
    done
    try_mount /sys/fs/cgroup/systemd -t cgroup -o none,name=systemd cgroup
  fi
fi
# cgroup v2: processes cannot stay in the root of a domain that delegates controllers, so move
# them to a leaf first (as moby's hack/dind does), then enable every controller for children.
if [ -e /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
    log "could not enable cgroup v2 controllers"
fi

mkdir -p /var/lib/docker
case "${DIND_TMPFS_DATA_ROOT:-auto}" in
  yes) is_mountpoint /var/lib/docker || try_mount /var/lib/docker -t tmpfs -o mode=711 tmpfs ;;
  auto)
    if ! is_mountpoint /var/lib/docker && [ "$(fstype /var/lib/docker)" = overlayfs ]; then
      log "/var/lib/docker is on overlayfs: mounting a tmpfs there (or give it a volume)"
      try_mount /var/lib/docker -t tmpfs -o mode=711 tmpfs
    fi
    ;;
esac

if [ -n "${DIND_STORAGE_DRIVER:-}" ] && [ -f /etc/docker/daemon.json ]; then
  sed -i "s/\"storage-driver\": *\"[^\"]*\"/\"storage-driver\": \"$DIND_STORAGE_DRIVER\"/" /etc/docker/daemon.json
fi

case "${DIND_IPTABLES_BACKEND:-}" in
  nft|legacy)
    for t in iptables ip6tables; do
      update-alternatives --quiet --set "$t" "/usr/sbin/$t-$DIND_IPTABLES_BACKEND" || log "could not select $t-$DIND_IPTABLES_BACKEND"
    done
    ;;
esac

flags=""
case "${DIND_IPTABLES:-true}" in
  false|0|no) flags="--iptables=false --ip-masq=false --bridge=none" ;;
esac

# A container stopped and started again keeps its rootfs: pid files of the last run are stale.
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid
# shellcheck disable=SC2086 # word splitting of the flag strings is intended
dockerd $flags ${DIND_DOCKERD_ARGS:-} >>/var/log/dockerd.log 2>&1 &
dockerd_pid=$!
echo $dockerd_pid >/run/dind-dockerd.pid
log "dockerd started (pid $dockerd_pid, log /var/log/dockerd.log)"

if [ $# -gt 0 ]; then exec "$@"; fi
# No command: live as long as dockerd does. docker stop's SIGTERM reaches dockerd through tini -g;
# this shell only notes it and keeps waiting, so the container ends when dockerd's shutdown is done.
trap 'log "stop signal: waiting for dockerd to shut down"' TERM INT
while kill -0 "$dockerd_pid" 2>/dev/null; do wait "$dockerd_pid"; done
