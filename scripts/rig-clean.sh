#!/usr/bin/env bash
# Kill and unmount whatever the test rig (test/rig/*.ts) left behind: private dockerd/containerd,
# their shims, runtime invocations and containers, mounts under the rig dirs, rig cgroups.
#
# usage: rig-clean.sh [--purge] [--after-pid PID] [NAME...]
#   no NAME          every rig found under /run/sysrunc-test and /var/lib/sysrunc-test
#   --purge          also delete /var/lib/sysrunc-test/NAME (data roots, logs, imported images)
#   --after-pid PID  first wait until PID has exited (crash watchdog spawned by the rig)
# Only processes tied to rig paths are touched; a system dockerd/containerd is never matched.
set -u
shopt -s nullglob

RUN_DIR=/run/sysrunc-test
LIB_DIR=/var/lib/sysrunc-test
RUNC=${SYSRUNC_TEST_RUNC:-/usr/sbin/runc}

purge=0
after_pid=
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --purge) purge=1 ;;
    --after-pid) after_pid=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) names+=("$1") ;;
  esac
  shift
done

alive() { # pid alive and not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

if [ -n "$after_pid" ]; then
  while alive "$after_pid"; do sleep 0.5; done
fi

mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/.clean.lock"
flock 9

if [ ${#names[@]} -eq 0 ]; then
  for d in "$RUN_DIR"/*/ "$LIB_DIR"/*/; do names+=("$(basename "$d")"); done
  mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u | sed '/^$/d')
fi

# Processes of rig $1: daemons/shims/clients whose argv mentions the rig dirs, plus runtime calls
# (`<runtime> --root <rig path>`), whatever their binary is (sysrunc runs as node).
rig_pids() {
  local run="$RUN_DIR/$1/" lib="$LIB_DIR/$1/" f p comm cmd
  while IFS= read -r f; do
    p=${f#/proc/}; p=${p%/cmdline}
    { [ "$p" = $$ ] || [ "$p" = "$BASHPID" ]; } && continue
    comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    case "$comm" in
      dockerd|containerd|containerd-shim*|runc|docker|ctr|docker-proxy) echo "$p" ;;
      *)
        cmd=$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) || continue
        case "$cmd" in *"--root $run"*|*"--root=$run"*) echo "$p" ;; esac ;;
    esac
  done < <(grep -lsaF -e "$run" -e "$lib" /proc/[0-9]*/cmdline)
}

# Listening sockets of the given pids that live in containerd's global shim socket dir.
shim_sockets() {
  local p fd inodes=()
  for p in "$@"; do
    for fd in /proc/"$p"/fd/*; do
      case "$(readlink "$fd" 2>/dev/null)" in socket:\[*\]) inodes+=("$(readlink "$fd" | tr -dc 0-9)") ;; esac
    done
  done
  [ ${#inodes[@]} -eq 0 ] && return 0
  awk -v list=" ${inodes[*]} " 'NR>1 && $8 ~ "^/run/containerd/s/" && index(list, " " $7 " ") {print $8}' /proc/net/unix | sort -u
}

mounts_under() {
  awk -v a="$1/" -v b="$2/" '{ mp = $5 "/"; if (index(mp, a) == 1 || index(mp, b) == 1) print $5 }' /proc/self/mountinfo |
    while IFS= read -r m; do printf '%b\n' "$m"; done
}

clean_one() {
  local name=$1 run="$RUN_DIR/$1" lib="$LIB_DIR/$1" st cdir id root cg procs pid m i
  local -a pids socks mps

  # 1. containers: via every runc state dir under the rig, then via the rig's cgroups.
  while IFS= read -r st; do
    cdir=$(dirname "$st"); id=$(basename "$cdir"); root=$(dirname "$cdir")
    "$RUNC" --root "$root" kill --all "$id" KILL >/dev/null 2>&1
    pid=$(jq -r '.init_process_pid // empty' "$st" 2>/dev/null)
    [ -n "$pid" ] && alive "$pid" && kill -KILL "$pid" 2>/dev/null
  done < <(find "$run" -name state.json -path '*/runtime-*' 2>/dev/null; find "$run/runc" -name state.json 2>/dev/null)
  for cg in /sys/fs/cgroup/*/"sysrunc-test-$name" /sys/fs/cgroup/"sysrunc-test-$name"; do
    while IFS= read -r procs; do
      while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$procs"
    done < <(find "$cg" -name cgroup.procs 2>/dev/null)
  done

  # 2. daemons, shims, runtime calls.
  mapfile -t pids < <(rig_pids "$name")
  if [ ${#pids[@]} -gt 0 ]; then
    mapfile -t socks < <(shim_sockets "${pids[@]}")
    kill -KILL "${pids[@]}" 2>/dev/null
    for i in $(seq 100); do
      local left=0
      for pid in "${pids[@]}"; do alive "$pid" && left=1; done
      [ $left = 0 ] && break
      sleep 0.05
    done
    [ ${#socks[@]} -gt 0 ] && rm -f "${socks[@]}"
  fi

  # 3. mounts, deepest (latest) first; lazy unmount as a last resort.
  for i in 1 2 3 4 5; do
    mapfile -t mps < <(mounts_under "$run" "$lib" | tac)
    [ ${#mps[@]} -eq 0 ] && break
    for m in "${mps[@]}"; do umount "$m" 2>/dev/null || { [ $i -ge 3 ] && umount -l "$m" 2>/dev/null; }; done
  done

  # 4. cgroups (rmdir only removes empty ones).
  for cg in /sys/fs/cgroup/*/"sysrunc-test-$name" /sys/fs/cgroup/"sysrunc-test-$name"; do
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done

  # 5. state dirs; never rm -rf across a mount point that is still there.
  mapfile -t mps < <(mounts_under "$run" "$lib")
  if [ ${#mps[@]} -eq 0 ]; then
    rm -rf "$run"
    [ $purge = 1 ] && rm -rf "$lib"
  fi

  mapfile -t pids < <(rig_pids "$name")
  if [ ${#mps[@]} -gt 0 ] || [ ${#pids[@]} -gt 0 ]; then
    echo "rig-clean: $name: still left: mounts=[${mps[*]}] pids=[${pids[*]}]" >&2
    return 1
  fi
  return 0
}

rc=0
for n in "${names[@]}"; do
  case "$n" in ''|.*|*/*) continue ;; esac
  clean_one "$n" || rc=1
done

# Global dirs dockerd/shims create on the side (/run/docker/plugins, /run/containerd/s): once no
# rig is left, remove them if empty (rmdir never removes a system daemon's files).
if [ -z "$(find "$RUN_DIR" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then
  rmdir /run/containerd/s /run/containerd /run/docker/plugins /run/docker 2>/dev/null
  rm -f "$RUN_DIR/.clean.lock" && rmdir "$RUN_DIR" 2>/dev/null
  [ $purge = 1 ] && rmdir "$LIB_DIR" 2>/dev/null
fi
exit $rc
