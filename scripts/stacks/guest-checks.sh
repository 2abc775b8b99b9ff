#!/bin/sh
# Runs inside a stack VM (scripts/test-stacks.sh), from its second disk (/opt/stack: this script,
# the host's node binary, the checkout's build in sysrunc/). The kernel command line says what to do:
#   sysrunc.stack=provision  import the check images into the guest's engines, then power off
#   sysrunc.stack=check      start sysrunc-mgr, dockerd, containerd; run every check; power off
# Report lines go to the second serial port (the host's results file), one per line:
#   FACT <name> <value...>
#   CHECK <name> pass|fail|skip <milliseconds> <detail...>
#   DONE
set -u
stack=/opt/stack
report_tty=/dev/ttyS1
console_tty=/dev/ttyS0
mode=$(sed -n 's/.*sysrunc\.stack=\([a-z]*\).*/\1/p' /proc/cmdline)
ownership=$(sed -n 's/.*sysrunc\.ownership=\([a-z]*\).*/\1/p' /proc/cmdline)
images=/var/lib/sysrunc-stack
runtime=/usr/local/bin/sysrunc

report() { printf '%s\n' "$*" >"$report_tty"; }
say() { printf 'guest-checks: %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

ln -sf "$stack/node" /usr/local/bin/node
for tool in sysrunc-mgr sysrunc-ctl; do ln -sf "$stack/sysrunc/bin/$tool" "/usr/local/bin/$tool"; done
# The runtime path engines are given: the C launcher, as the .deb installs it; the sh launcher where
# this build has none.
if [ -x "$stack/sysrunc/dist/sysrunc" ]; then
	ln -sf "$stack/sysrunc/dist/sysrunc" /usr/local/bin/sysrunc
else
	ln -sf "$stack/sysrunc/bin/sysrunc" /usr/local/bin/sysrunc
fi
export PATH="/usr/local/bin:$PATH"

# wait_for <seconds> <command...>: until the command succeeds, at most <seconds> of wall-clock time
# (daemons starting). Counted by the clock, not by tries: on a loaded host one try of `docker exec`
# takes tens of seconds, and 240 tries were an hour.
wait_for() {
	deadline=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 1
	done
}

if [ "$mode" = provision ]; then
	t=$(now_ms)
	systemctl start containerd docker
	wait_for 120 docker info || { report "PROVISION fail dockerd did not start"; exit 1; }
	if ! docker import "$images/self.tar" stack/self:local >/dev/null || ! docker import "$images/bb.tar" stack/bb:local >/dev/null ||
		! podman import "$images/bb.tar" stack/bb:local >/dev/null; then
		report "PROVISION fail import"
		exit 1
	fi
	rm -f "$images/self.tar"
	systemctl stop docker docker.socket containerd
	sync
	report "PROVISION ok $(($(now_ms) - t))"
	exit 0
fi

# ---------------------------------------------------------------- the check run's daemons
mkdir -p /etc/docker
printf '{"runtimes":{"sysrunc":{"path":"%s"}}}\n' "$runtime" >/etc/docker/daemon.json
systemd-run --unit=sysrunc-mgr --property=KillMode=process /usr/local/bin/sysrunc-mgr \
	--socket /run/sysrunc/mgr.sock --state-dir /var/lib/sysrunc --ownership "${ownership:-auto}" >/dev/null
wait_for 60 test -S /run/sysrunc/mgr.sock || say "sysrunc-mgr has no socket after 60 s"
systemctl start containerd docker
wait_for 120 docker info || say "dockerd did not answer in 120 s"

report "FACT kernel $(uname -r)"
report "FACT manager-ownership ${ownership:-auto}"
report "FACT cgroup $(stat -fc %T /sys/fs/cgroup)"
report "FACT runc $(runc --version | sed -n 's/^runc version //p')"
report "FACT launcher $(readlink /usr/local/bin/sysrunc)"
report "FACT containerd $(containerd --version | awk '{print $3}')"
report "FACT docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
report "FACT docker-cgroup-driver $(docker info --format '{{.CgroupDriver}}' 2>/dev/null)"
report "FACT podman $(podman --version | awk '{print $3}')"
report "FACT sysrunc-call $("$stack/sysrunc/dist/sysrunc-call" --version 2>&1 | tail -1)"

# check <name> <function>: runs it, times it, reports pass/fail with its last output line.
# sysrunc.only=<a,b,...> on the kernel command line (SYSRUNC_STACKS_ONLY) runs only those checks.
only=$(sed -n 's/.*sysrunc\.only=\([a-z,-]*\).*/\1/p' /proc/cmdline)
selected() { case ",$only," in ",,") ;; *",$1,"*) ;; *) return 1 ;; esac; }
check() {
	name=$1
	shift
	selected "$name" || return 0
	t=$(now_ms)
	out=$("$@" 2>&1)
	status=$?
	ms=$(($(now_ms) - t))
	detail=$(printf '%s\n' "$out" | grep -v '^$' | tail -1)
	if [ "$status" -eq 0 ]; then
		report "CHECK $name pass $ms $detail"
	else
		report "CHECK $name fail $ms $detail"
		say "$name failed; its output:"
		printf '%s\n' "$out" | tail -20
	fi
}
run_sysrunc() { docker run --rm --runtime=sysrunc "$@"; }
fail() {
	echo "$*"
	return 1
}

check_userns() {
	map=$(run_sysrunc stack/bb:local cat /proc/self/uid_map) || fail "docker run failed: $map" || return 1
	# shellcheck disable=SC2086 # the map's three fields
	set -- $map
	if [ "$1" != 0 ] || [ "$2" = 0 ]; then fail "uid_map is '$map'" || return 1; fi
	echo "root is host uid $2 (+$3)"
}

check_limits() {
	got=$(run_sysrunc -m 64m --cpus 0.5 --pids-limit 50 stack/bb:local \
		cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max | tr '\n' ' ')
	[ "$got" = "67108864 50000 100000 50 " ] || fail "memory.max cpu.max pids.max: '$got'" || return 1
	echo "$got"
}

# What nested systemd and dockerd do on cgroup v2: move out of the root, enable controllers, make a
# limited child.
check_child_cgroup() {
	run_sysrunc stack/bb:local sh -ec '
		cd /sys/fs/cgroup
		mkdir init && echo $$ >init/cgroup.procs
		echo "+memory +pids" >cgroup.subtree_control
		mkdir leaf && echo 7 >leaf/pids.max && echo 33554432 >leaf/memory.max
		sh -c "echo \$\$ >/sys/fs/cgroup/leaf/cgroup.procs; cat /proc/self/cgroup; cat /sys/fs/cgroup/leaf/pids.max"'
}

check_exec() {
	docker run -d --runtime=sysrunc --name stack-exec stack/bb:local sleep 600 >/dev/null || return 1
	uid=$(docker exec stack-exec id -u) && map=$(docker exec stack-exec cat /proc/self/uid_map)
	status=$?
	docker rm -f stack-exec >/dev/null
	if [ "$status" != 0 ] || [ "$uid" != 0 ]; then fail "exec: uid '$uid' map '$map'" || return 1; fi
	echo "exec as uid 0, map $map"
}

# Issue 25: the engine's own operations on a RUNNING container, each done to a runc container of the
# same image too and compared (Docker 28's `docker cp` failed while two overlays shared its upper
# dir), and no overlayfs warning about a shared upper/work dir meanwhile. The busybox image has no
# /etc/passwd: the file copied out of the image's layers is /bin/busybox (and /bin, a directory;
# not /etc, whose hostname and hosts differ per container; its applets are absolute symlinks to
# /bin/busybox, dangling on the guest: compared as links).
shared_upper_warnings() { dmesg 2>/dev/null | grep -c 'is in-use as upperdir/workdir'; }
# engine_ops_on <runtime> <dir>: runs a container, does each operation, leaves what it saw in <dir>.
engine_ops_on() {
	rt=$1 out=$2 c=stack-ops-$1
	mkdir -p "$out/cp"
	docker run -d --runtime="$rt" --name "$c" stack/bb:local sh -c 'echo made > /made; exec sleep 600' >/dev/null || return 1
	wait_for 30 docker exec "$c" test -f /made || { echo "the $rt container did not make /made"; return 1; }
	docker cp "$out/../in.txt" "$c:/in.txt" >"$out/cp-in.err" 2>&1 &&
		docker exec "$c" sh -c 'cat /in.txt; stat -c %u:%g /in.txt' >"$out/cp-in" 2>&1
	for f in /bin/busybox /made /bin; do
		docker cp "$c:$f" "$out/cp/$(basename "$f")" >>"$out/cp-out.err" 2>&1 || echo "docker cp out of $f failed" >>"$out/failed"
	done
	docker diff "$c" 2>&1 | sort >"$out/diff"
	docker commit "$c" "stack/ops-$rt:1" >/dev/null 2>&1 &&
		docker run --rm --runtime=runc "stack/ops-$rt:1" sh -c 'cat /made /in.txt; stat -c "%n %u:%g %a" /made /in.txt /bin/busybox /etc' >"$out/commit" 2>&1
	docker export "$c" | tar -t | sort >"$out/export" 2>&1
	docker rm -f "$c" >/dev/null
	docker rmi "stack/ops-$rt:1" >/dev/null 2>&1
	return 0
}
check_engine_ops() {
	warned=$(shared_upper_warnings)
	tmp=$(mktemp -d)
	echo copied-in >"$tmp/in.txt"
	engine_ops_on runc "$tmp/runc" && engine_ops_on sysrunc "$tmp/sysrunc"
	r=$tmp/runc s=$tmp/sysrunc
	result=fail
	if [ -s "$s/failed" ] || [ ! -s "$s/cp-in" ]; then
		why="$(cat "$s/failed" 2>/dev/null) $(tail -2 "$s/cp-in.err" "$s/cp-out.err" 2>/dev/null | tr '\n' ' ')"
	elif [ -s "$r/failed" ]; then
		why="under runc too: $(cat "$r/failed")"
	elif ! diff -r --no-dereference "$r/cp" "$s/cp" >/dev/null; then
		why="docker cp out differs from runc's: $(diff -rq --no-dereference "$r/cp" "$s/cp" 2>&1 | head -3 | tr '\n' ' ')"
	elif [ "$(head -1 "$s/cp-in")" != copied-in ]; then
		why="docker cp in: the container reads '$(head -1 "$s/cp-in")'"
	elif [ -n "$(comm -23 "$r/diff" "$s/diff")" ]; then
		why="docker diff misses runc's lines: $(comm -23 "$r/diff" "$s/diff" | head -3 | tr '\n' ' ')"
	elif [ "$(head -2 "$s/commit")" != "$(printf 'made\ncopied-in')" ]; then
		why="docker commit lost /made or /in.txt: $(head -3 "$s/commit" | tr '\n' ' ')"
	elif ! cmp -s "$r/export" "$s/export"; then
		why="docker export lists other files than runc's: $(diff "$r/export" "$s/export" | head -3 | tr '\n' ' ')"
	else
		result=pass
		why="docker cp in and out, diff, commit, export of a running container as under runc"
	fi
	# What is not (yet) equal to runc's, said in the detail (README, Ownership: what the engine sees).
	if [ "$result" = pass ]; then
		[ "$(tail -1 "$s/cp-in")" = "$(tail -1 "$r/cp-in")" ] || why="$why; cp in owned $(tail -1 "$s/cp-in") inside (runc: $(tail -1 "$r/cp-in"))"
		cmp -s "$r/diff" "$s/diff" || why="$why; diff lists $(wc -l <"$s/diff") lines (runc: $(wc -l <"$r/diff"))"
		cmp -s "$r/commit" "$s/commit" || why="$why; commit owners: $(diff "$r/commit" "$s/commit" | grep '^>' | head -2 | tr '\n' ' ')"
	fi
	rm -rf "$tmp"
	now=$(shared_upper_warnings)
	[ "$now" = "$warned" ] || { result=fail; why="$why; the kernel warned $((now - warned)) time(s) of a shared upper/work dir"; }
	echo "$why"
	[ "$result" = pass ]
}

# What docker:dind's entrypoint (moby's hack/dind) does on cgroup v2 before dockerd: no process may
# stay in the root of a cgroup that delegates controllers, so all move to a leaf first. Then
# containerd is started on its own and dockerd pointed at it (as Debian's docker.service does):
# dockerd's own wait for a containerd it starts itself is fixed and short, and under one emulated
# CPU containerd 2.1 was still loading its plugins when dockerd gave up and exited.
# shellcheck disable=SC2016 # expanded by the container's shell
DIND_START='mkdir -p /sys/fs/cgroup/init
xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null
sed -e "s/ / +/g" -e "s/^/+/" </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control
command -v containerd >/dev/null || exec dockerd
containerd &
deadline=$(($(date +%s) + 300))
until ctr version >/dev/null 2>&1 || [ "$(date +%s)" -ge "$deadline" ]; do sleep 1; done
exec dockerd --containerd=/run/containerd/containerd.sock'
check_dind() {
	docker run -d --runtime=sysrunc --name stack-dind -v "$images/bb.tar:/bb.tar:ro" stack/self:local sh -c "$DIND_START" >/dev/null ||
		return 1
	result=fail
	if wait_for 420 docker exec stack-dind docker info; then
		docker exec stack-dind docker import /bb.tar bb >/dev/null &&
			inner=$(docker exec stack-dind docker run --rm -m 32m bb sh -c 'echo inner-ok; cat /sys/fs/cgroup/memory.max') &&
			result=pass
	else
		inner="inner dockerd did not answer in 420 s: $(docker logs stack-dind 2>&1 | tail -3)"
	fi
	docker rm -f stack-dind >/dev/null
	echo "$inner" | tr '\n' ' '
	[ "$result" = pass ]
}

# systemd_settled <container>: systemctl is-system-running inside has left starting/initializing.
systemd_settled() {
	state=$(docker exec "$1" systemctl is-system-running 2>/dev/null)
	case $state in starting | initializing | "") return 1 ;; esac
}
# systemd_boot <container> <docker run options...>: starts the systemd image, waits until it settles;
# prints "<state> <failed unit>..." and, for each failed unit, its status (into the console log).
systemd_boot() {
	name=$1
	shift
	docker run -d --name "$name" --stop-signal SIGRTMIN+3 "$@" stack/systemd:local /sbin/init >/dev/null || return 1
	wait_for 300 systemd_settled "$name"
	state=$(docker exec "$name" systemctl is-system-running 2>&1)
	failed=$(docker exec "$name" systemctl --failed --plain --no-legend 2>&1 | awk '{print $1}' | sort | tr '\n' ' ')
	for unit in $failed; do docker exec "$name" systemctl status -l -n 8 --no-pager "$unit" 2>&1 | sed "s/^/  $name: /" >"$console_tty"; done
	docker rm -f "$name" >/dev/null
	echo "$state $failed"
}
# systemd must reach "running" under sysrunc. A unit that fails there is sysrunc's to fix unless it
# fails the same way under plain runc (privileged, in a cgroup namespace of its own: the usual way
# to run systemd under runc): then the check passes and says so, naming the unit.
check_systemd() {
	# The guest's userland as a systemd image, without the guest's fstab (its / is /dev/vda).
	if ! docker image inspect stack/systemd:local >/dev/null 2>&1; then
		docker run --name stack-fstab stack/self:local truncate -s 0 /etc/fstab >/dev/null &&
			docker commit stack-fstab stack/systemd:local >/dev/null && docker rm stack-fstab >/dev/null ||
			fail "could not make stack/systemd:local" || return 1
	fi
	booted=$(systemd_boot stack-systemd --runtime=sysrunc) || return 1
	# shellcheck disable=SC2086 # state, then the failed units
	set -- $booted
	state=${1:-none}
	[ $# -eq 0 ] || shift
	failed=$*
	if [ "$state" = running ]; then
		echo "is-system-running: running"
		return 0
	fi
	booted=$(systemd_boot stack-systemd-runc --runtime=runc --privileged --cgroupns=private)
	# shellcheck disable=SC2086 # state, then the failed units
	set -- $booted
	runc_state=${1:-none}
	[ $# -eq 0 ] || shift
	only_sysrunc=
	for unit in $failed; do
		case " $* " in *" $unit "*) ;; *) only_sysrunc="$only_sysrunc $unit" ;; esac
	done
	if [ -z "$only_sysrunc" ] && [ -n "$failed" ]; then
		echo "is-system-running: $state, as under runc ($runc_state): failed under both: $failed"
		return 0
	fi
	echo "is-system-running: $state (failed:${only_sysrunc:- none} only under sysrunc; under runc: $runc_state${*:+, failed: $*})"
	return 1
}

# podman with sysrunc as its runtime.
p() { podman --runtime "$runtime" "$@"; }

# --network none: the rootfs overlay (where podman and sysrunc meet) is the same with any network;
# podman's own network is check_podman_pod's.
check_podman() {
	out=$(p run --rm --network none stack/bb:local true 2>&1) || fail "podman run --rm: $(echo "$out" | tail -1)" || return 1
	out=$(p run -d --network none --name stack-podman stack/bb:local sh -c 'echo podman-log; sleep 600' 2>&1) ||
		fail "podman run -d: $(echo "$out" | tail -1)" || return 1
	uid=$(p exec stack-podman id -u) || fail "podman exec failed" || { p rm -f stack-podman; return 1; }
	logs=$(p logs stack-podman)
	p stop -t 2 stack-podman >/dev/null && p rm stack-podman >/dev/null || fail "podman stop/rm failed" || return 1
	if [ "$uid" != 0 ] || [ "$logs" != podman-log ]; then fail "podman exec uid '$uid', logs '$logs'" || return 1; fi
	echo "run --rm, run -d, exec (uid $uid), logs, stop, rm"
}

# podman's own network (netavark's or CNI's bridge: a network namespace the host's user namespace
# owns, joined by path) with its default sysctl net.ipv4.ping_group_range=0 0, which runc cannot
# write from the container's user namespace: sysrunc drops it (it names none of the container's
# gids). The container gets its address on the bridge.
check_podman_network() {
	out=$(p run --rm stack/bb:local ip -4 -o addr show eth0 2>&1) || fail "podman run on podman's network: $(echo "$out" | tail -1)" || return 1
	addr=$(echo "$out" | awk '{print $4}')
	[ -n "$addr" ] || fail "no IPv4 address on eth0: $out" || return 1
	echo "eth0 $addr on podman's network"
}

# A podman pod: `podman pod create` (its infra from catatonit, netavark's or CNI's bridge network)
# and an app container in it, both under sysrunc. Fails today (README Known limits): podman's network
# namespace is owned by the host's user namespace and joined by path. The infra runs (its sysctl as
# in check_podman_network); the app, put in the infra's user namespace, fails to mount sysfs (runc
# 1.3: the user namespace it joins does not own the network namespace) or to join the network
# namespace (runc 1.1). What it checks is what a fix must make true.
check_podman_pod() {
	p pod rm -f stack-pod >/dev/null 2>&1
	out=$(p pod create --name stack-pod 2>&1) || fail "podman pod create: $(echo "$out" | tail -1)" || return 1
	out=$(p run -d --pod stack-pod --name stack-pod-app stack/bb:local sleep 600 2>&1)
	status=$?
	want="" got="" addr=""
	if [ "$status" = 0 ]; then
		infra=$(p pod inspect stack-pod --format '{{.InfraContainerID}}')
		want=$(readlink "/proc/$(p inspect "$infra" --format '{{.State.Pid}}')/ns/net")
		got=$(p exec stack-pod-app readlink /proc/self/ns/net 2>&1)
		addr=$(p exec stack-pod-app ip -4 -o addr show eth0 2>&1 | awk '{print $4}')
	fi
	p pod rm -f stack-pod >/dev/null 2>&1 || fail "podman pod rm -f failed" || return 1
	[ "$status" = 0 ] || fail "podman run --pod: $(echo "$out" | tail -1)" || return 1
	[ -n "$want" ] && [ "$got" = "$want" ] || fail "the app's network namespace '$got' is not the infra's '$want'" || return 1
	[ -n "$addr" ] || fail "the app sees no IPv4 address on the pod's eth0" || return 1
	echo "the app runs in the pod's network namespace ($want), eth0 $addr"
}

# Rootless podman is not supported (the manager serves host root only): what a user who tries gets
# must be one line from sysrunc that says so, and nothing may be left of the attempt.
ROOTLESS_USER='stack-rootless'
as_rootless() { (cd / && runuser -u "$ROOTLESS_USER" -- env HOME="/home/$ROOTLESS_USER" XDG_RUNTIME_DIR="/home/$ROOTLESS_USER/run" "$@"); }
check_podman_rootless() {
	if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
		useradd -m "$ROOTLESS_USER" || return 1
		echo "$ROOTLESS_USER:1000000:65536" >>/etc/subuid
		echo "$ROOTLESS_USER:1000000:65536" >>/etc/subgid
	fi
	as_rootless mkdir -p -m 700 "/home/$ROOTLESS_USER/run"
	out=$(as_rootless podman import "$images/bb.tar" stack/bb:local 2>&1) || fail "rootless podman import: $(echo "$out" | tail -1)" || return 1
	if out=$(as_rootless podman --runtime "$runtime" run --rm --network none stack/bb:local true 2>&1); then
		fail "rootless podman run with sysrunc succeeded" || return 1
	fi
	echo "$out" | sed 's/^/  rootless podman: /'
	lines=$(echo "$out" | grep -c 'sysrunc:')
	said=$(echo "$out" | grep 'sysrunc:' | sed 's/.*sysrunc: //')
	[ "$lines" = 1 ] || fail "sysrunc said $lines lines" || return 1
	case $said in *"rootless podman and rootless Docker are not supported"*) ;; *) fail "unclear: $said" || return 1 ;; esac
	left=$(as_rootless podman ps -aq)
	[ -z "$left" ] || fail "the rootless attempt left container(s) $left" || return 1
	echo "$said"
}

# `sysrunc features` is this stack's runc's own answer plus sysrunc's additions.
check_features() {
	cd "$stack/sysrunc" && node --import tsx test/stacks/features-check.ts "$runtime" "$(command -v runc)"
}

# use_docker_cgroup_driver <systemd|cgroupfs>: dockerd restarted with that driver.
use_docker_cgroup_driver() {
	printf '{"runtimes":{"sysrunc":{"path":"%s"}},"exec-opts":["native.cgroupdriver=%s"]}\n' "$runtime" "$1" >/etc/docker/daemon.json
	systemctl restart docker
	wait_for 120 docker info && [ "$(docker info --format '{{.CgroupDriver}}')" = "$1" ]
}

leftovers() {
	for dir in /run/sysrunc/containers /run/sysrunc/bundles; do
		[ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && echo "$dir: $(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f ')"
	done
	grep -c ' /run/sysrunc/' /proc/self/mountinfo | grep -v '^0$' | sed 's/$/ mounts under \/run\/sysrunc/'
	for root in /run/docker/runtime-runc/moby /run/containerd/runc/k8s.io /run/runc; do
		[ -d "$root" ] && runc --root "$root" list -q | sed "s|^|left in $root: |"
	done
}
leftovers_gone() { [ -z "$(leftovers)" ]; }
check_nothing_left() {
	wait_for 60 leftovers_gone || fail "$(leftovers | tr '\n' ' ')" || return 1
	echo "no containers, bundles, mounts or runc state left"
}

# An extra script (SYSRUNC_STACKS_EXTRA on the host): runs after the daemons are up, before the
# checks; its output goes to the console log, its REPORT lines (report ...) to the results.
if [ -r "$stack/extra.sh" ]; then
	say "extra script"
	# shellcheck disable=SC1091 # copied onto the run disk by test-stacks.sh
	. "$stack/extra.sh"
fi
check userns check_userns
check limits check_limits
check child-cgroup check_child_cgroup
check exec check_exec
check engine-ops check_engine_ops
check dind check_dind
check systemd check_systemd
check_cri_pod() {
	cd "$stack/sysrunc" && node --import tsx test/stacks/cri-pod-check.ts "$stack/oci/pause.tar" "$stack/oci/bb.tar"
}
if [ -r "$stack/oci/pause.tar" ] && [ -r "$stack/shared/cri-api/api.proto" ]; then
	check cri-pod check_cri_pod
else
	report "CHECK cri-pod skip 0 no CRI proto or pause image on the run disk"
fi
check podman check_podman
check podman-network check_podman_network
check podman-rootless check_podman_rootless
check features check_features

# Docker's other cgroup driver: the cgroup checks again, with dockerd restarted under cgroupfs (the
# guests' Docker defaults to systemd on cgroup v2).
if selected limits-cgroupfs || selected child-cgroup-cgroupfs || selected dind-cgroupfs || selected systemd-cgroupfs; then
	if use_docker_cgroup_driver cgroupfs; then
		report "FACT docker-cgroup-driver-2 $(docker info --format '{{.CgroupDriver}}' 2>/dev/null)"
		check limits-cgroupfs check_limits
		check child-cgroup-cgroupfs check_child_cgroup
		check dind-cgroupfs check_dind
		check systemd-cgroupfs check_systemd
	else
		report "CHECK limits-cgroupfs fail 0 dockerd did not come back with native.cgroupdriver=cgroupfs"
	fi
fi

# Issue 20: what sysrunc leaves to runc when runc's own features say it can (runc 1.2+), and
# today's way on runc 1.1. Each passes on both, and says which way it went.
runc_idmap() { runc features 2>/dev/null | node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const f=JSON.parse(t);process.stdout.write(String(f.linux?.mountExtensions?.idmap?.enabled===true))})'; }
check_runc_features() {
	ours=$(sysrunc features | node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const f=JSON.parse(t);process.stdout.write(String(f.linux?.mountExtensions?.idmap?.enabled===true))})')
	[ "$ours" = "$(runc_idmap)" ] || fail "sysrunc features says idmap $ours, runc says $(runc_idmap)" || return 1
	learned=$(journalctl -u sysrunc-mgr --no-pager -o cat | grep -o '"runtimeFeatures":{[^}]*}' | tail -1)
	case $learned in *"\"idmapMounts\":$ours"*) ;; *) fail "the manager learned '$learned', runc says idmap $ours" || return 1 ;; esac
	echo "runc and sysrunc features: idmap $ours; manager: $learned"
}
# Docker's /etc/hosts is an engine file: an idmapped bind (host root's file is container root's).
# runc 1.2+: runc's own idmapped mount (uidMappings on the mount in the prepared config.json, no
# mount of sysrunc's for it); runc 1.1: sysrunc's own, made on the host's side.
check_idmap_binds() {
	docker run -d --runtime=sysrunc --name stack-idmap stack/bb:local sleep 600 >/dev/null || return 1
	cid=$(docker inspect -f '{{.Id}}' stack-idmap)
	by=$(node -e 'const s=require(process.argv[1]);const m=s.mounts.find(m=>m.destination==="/etc/hosts");process.stdout.write(m.uidMappings?"runc":"sysrunc")' "/run/sysrunc/bundles/$cid/config.json")
	inside=$(docker exec stack-idmap sh -c 'stat -c %u /etc/hosts; echo 10.9.9.9 stack >>/etc/hosts && tail -1 /etc/hosts; grep " /etc/hosts " /proc/self/mountinfo | grep -c idmapped' | tr '\n' ' ')
	docker rm -f stack-idmap >/dev/null
	want=sysrunc
	[ "$(runc_idmap)" = true ] && want=runc
	[ "$by" = "$want" ] || fail "/etc/hosts idmapped by $by, expected $want (runc idmap $(runc_idmap))" || return 1
	# Before 5.12 the kernel has no idmapped mounts: the bind source is chowned while the container runs.
	how=idmapped
	kernel_below 5 12 && how=chowned
	if [ "$how" = chowned ]; then
		[ "$inside" = "0 10.9.9.9 stack 0 " ] || fail "inside: uid, write, idmapped (none expected on $(uname -r)): '$inside'" || return 1
	else
		[ "$inside" = "0 10.9.9.9 stack 1 " ] || fail "inside: uid, write, idmapped: '$inside'" || return 1
	fi
	echo "/etc/hosts $how by $by: root-owned and writable inside"
}
# Whether the running kernel is older than major.minor.
kernel_below() {
	release=$(uname -r)
	major=${release%%.*}
	rest=${release#*.}
	minor=${rest%%[!0-9]*}
	[ "$major" -lt "$1" ] || { [ "$major" -eq "$1" ] && [ "$minor" -lt "$2" ]; }
}
# A namespace the host's user namespace owns, joined by path (ip netns; a host process's IPC
# namespace): on runc 1.2+ create and exec work; on runc 1.1 exec into the netns fails (runc's own
# error) and the IPC join is refused with sysrunc's one line. No /dev/mqueue: mqueue cannot be
# mounted from a user namespace in an IPC namespace the host owns, under any runtime.
ipc_unshared() { [ "$(readlink "/proc/$ipcpid/ns/ipc")" != "$(readlink /proc/self/ns/ipc)" ]; }
check_ns_join() {
	b=/tmp/stack-nsjoin
	rm -rf "$b" && mkdir -p "$b/rootfs" || return 1
	c=$(docker create stack/bb:local true) && docker export "$c" | tar -C "$b/rootfs" -x && docker rm "$c" >/dev/null
	ip netns add stack-nsjoin || return 1
	unshare --ipc sleep 600 &
	ipcpid=$!
	wait_for 10 ipc_unshared || fail "unshare --ipc made no IPC namespace" || return 1
	(cd "$b" && runc spec)
	node -e 'const fs=require("fs");const f=process.argv[1];const s=JSON.parse(fs.readFileSync(f));s.process.terminal=false;s.process.args=["sleep","600"];
		s.linux.namespaces=s.linux.namespaces.map(n=>n.type==="network"?{type:"network",path:"/run/netns/stack-nsjoin"}:n.type==="ipc"?{type:"ipc",path:process.argv[2]}:n);
		s.mounts=s.mounts.filter(m=>m.destination!=="/dev/mqueue");
		fs.writeFileSync(f,JSON.stringify(s))' "$b/config.json" "/proc/$ipcpid/ns/ipc"
	# The container's stdio must not be this substitution's pipe (it would wait for the container).
	sysrunc create --bundle "$b" stack-nsjoin </dev/null >/dev/null 2>"$b/err" && sysrunc start stack-nsjoin &&
		out=$(sysrunc exec stack-nsjoin sh -c 'readlink /proc/self/ns/net; readlink /proc/self/ns/ipc' 2>&1)
	status=$?
	[ -s "$b/err" ] && out=$(cat "$b/err")
	want="$(ip netns exec stack-nsjoin readlink /proc/self/ns/net) $(readlink "/proc/$ipcpid/ns/ipc")"
	sysrunc delete -f stack-nsjoin >/dev/null 2>&1
	kill "$ipcpid"
	ip netns del stack-nsjoin
	if [ "$(runc_idmap)" = true ]; then
		[ "$status" = 0 ] && [ "$(printf '%s' "$out" | tr '\n' ' ')" = "$want" ] || fail "create/exec joining host-owned netns and ipc: $out" || return 1
		echo "runc 1.2+: create and exec in a host-owned netns and IPC namespace: $want"
	else
		case $out in *"is not a namespace of a container sysrunc started"*) echo "runc 1.1: refused: $out" ;; *) fail "runc 1.1: expected the one-line refusal, got: $out" ;; esac
	fi
}
check_cri_userns() {
	cd "$stack/sysrunc" && node --import tsx test/stacks/cri-userns-check.ts "$stack/oci/pause.tar" "$stack/oci/bb.tar"
}
check runc-features check_runc_features
check idmap-binds check_idmap_binds
check ns-join check_ns_join
check podman-pod check_podman_pod
case $(containerd --version | awk '{print $3}') in
v1.* | 1.*) report "CHECK cri-userns skip 0 containerd before 2.0 has no pod user namespaces" ;;
*) if [ -r "$stack/oci/pause.tar" ] && [ -r "$stack/shared/cri-api/api.proto" ]; then check cri-userns check_cri_userns; fi ;;
esac
# Issue 23: the installer's containerd 2.x output (none, the distribution's, `config default`)
# under the node's containerd, a CRI pod under handler sysrunc, uninstall byte for byte.
check_installer_containerd() {
	cd "$stack/sysrunc" && node --import tsx test/stacks/installer-containerd-check.ts "$stack/oci/pause.tar" "$stack/oci/bb.tar"
}
case $(containerd --version | awk '{print $3}') in
v1.* | 1.*) report "CHECK installer-containerd skip 0 containerd 1.x: test/e2e/kubernetes-installer.test.ts on the host" ;;
*) [ -r "$stack/oci/pause.tar" ] && check installer-containerd check_installer_containerd ;;
esac
check nothing-left check_nothing_left
report "FACT ownership $(journalctl -u sysrunc-mgr --no-pager -o cat 2>/dev/null | grep -o '"ownership":{"mode":"[a-z]*","reason":"[^"]*"' | tail -1 | sed 's/.*"mode":"\([a-z]*\)","reason":"\(.*\)"$/\1 (\2)/')"
report "FACT features-runc $(sysrunc features 2>/dev/null | tr -d '\n ' | cut -c1-120)"
# How many containers had the engine's overlay back at their exit, before runc's delete (issue 24).
report "FACT exit-hand-backs $(journalctl -u sysrunc-mgr --no-pager -o cat 2>/dev/null | grep -c "returned the engine's overlay at the container's exit")"
journalctl -u sysrunc-mgr --no-pager -o cat 2>/dev/null | grep -i -E '"level":(40|50)' | tail -5 | cut -c1-400
report DONE
