#!/usr/bin/env bash
# The stack matrix: runs the core end-to-end checks (scripts/stacks/guest-checks.sh) on other
# distributions' kernels and engines, each in a virtual machine under qemu's software emulation
# (TCG; no KVM needed), one VM at a time, and prints a table stack x check with the time each took.
# Not part of scripts/test.sh (CI): a stack takes tens of minutes on a 2-core machine.
#
# usage: scripts/test-stacks.sh [--rebuild] [stack...]     (as root)
#   stack      bookworm, trixie, sid, bookworm-k510 (default: all, in that order)
#   --rebuild  build the stacks' guest images again even if cached
# Each stack's guest (debootstrap userland + the stack's Debian kernel package, busybox initramfs)
# is built once and cached under $SYSRUNC_TEST_CACHE/stacks (default /var/cache/sysrunc-test/stacks),
# keyed by a hash of its recipe (scripts/stacks/); its first boot imports the check images. Every
# run boots that disk copy-on-write, with this checkout's build (bin/, dist/, node_modules/) and the
# host's node binary on a second, read-only disk. The guests boot without AppArmor (their minimal
# userland has no apparmor_parser, without which Docker 20.10 refuses every container).
# Environment: SYSRUNC_STACKS_MIRROR (Debian mirror), SYSRUNC_STACKS_MEM (guest memory, default 4G),
#              SYSRUNC_STACKS_SMP (guest CPUs, default 2), SYSRUNC_STACKS_TIMEOUT (s per boot, 5400),
#              SYSRUNC_STACKS_OWNERSHIP (the guest manager's --ownership, default auto),
#              SYSRUNC_STACKS_ONLY (comma-separated checks to run, default all),
#              SYSRUNC_STACKS_EXTRA (a shell script sourced in the guest before the checks).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
# shellcheck source=scripts/stacks/stacks.sh
. scripts/stacks/stacks.sh

[ "$(id -u)" = 0 ] || { echo "test-stacks: must run as root (debootstrap, chroot)" >&2; exit 1; }
rebuild=0
stacks=()
for arg in "$@"; do
	case $arg in
	--rebuild) rebuild=1 ;;
	-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
	-*) echo "test-stacks: unknown option $arg" >&2; exit 2 ;;
	*) stack_define "$arg"; stacks+=("$arg") ;;
	esac
done
# shellcheck disable=SC2206 # the list of names
[ ${#stacks[@]} -gt 0 ] || stacks=($STACKS_ALL)
# What the stacks need beyond the host's test setup, installed here (the main test command does not
# need qemu): tool, then the Debian package that has it.
missing=()
for pair in qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap mkfs.ext4:e2fsprogs busybox:busybox-static zstd:zstd xz:xz-utils; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "test-stacks: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		{ echo "test-stacks: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
[ -x dist/sysrunc-call ] || [ -r dist/sysrunc.mjs ] || node scripts/build.mjs
node=$(readlink -f "$(command -v node)")

cache=${SYSRUNC_TEST_CACHE:-/var/cache/sysrunc-test}/stacks
recipe=$(cat scripts/stacks/stacks.sh scripts/stacks/build-image.sh scripts/stacks/make-initramfs.sh \
	scripts/stacks/initramfs-init scripts/stacks/sysrunc-stack.service | sha256sum | cut -c1-12)
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/sysrunc-stacks.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
log() { printf 'test-stacks [%5ds] %s\n' $(($(date +%s) - started)) "$*"; }

# The second disk: guest-checks.sh, node, the build. Made once per run with mkfs.ext4 -d.
log "run disk from $checkout (node $("$node" --version))"
run=$work/run
mkdir -p "$run/sysrunc" "$run/oci"
cp scripts/stacks/guest-checks.sh "$run/"
[ -z "${SYSRUNC_STACKS_EXTRA:-}" ] || cp "$SYSRUNC_STACKS_EXTRA" "$run/extra.sh"
cp "$node" "$run/node"
cp -a bench bin deploy dist node_modules package.json config src test tsconfig.json "$run/sysrunc/"
mkdir -p "$run/sysrunc/scripts"
cp scripts/rig-clean.sh "$run/sysrunc/scripts/"
# The CRI check (test/stacks/cri-pod-check.ts): the CRI proto the rig loads from ../shared, and the
# rig's pause and busybox OCI image tars (built here, cached).
for shared in "$checkout/../shared" "$checkout/../../shared"; do
	[ -r "$shared/cri-api/api.proto" ] && mkdir -p "$run/shared" && cp -a "$shared/cri-api" "$run/shared/" && break
done
# shellcheck disable=SC2016 # JavaScript, not shell
node --import tsx --input-type=module -e '
import { copyFileSync } from "node:fs";
import { ensureOciImageTar } from "./test/rig/images.ts";
import { ensurePauseImageTar } from "./test/rig/pause-image.ts";
import { PAUSE_IMAGE } from "./test/rig/cri.ts";
const out = process.argv[1];
copyFileSync(await ensurePauseImageTar(PAUSE_IMAGE), `${out}/pause.tar`);
copyFileSync(await ensureOciImageTar(), `${out}/bb.tar`);
' "$run/oci"
mkfs.ext4 -q -F -L stackrun -d "$run" "$work/run.img" 2G
rm -rf "$run"

# boot <image-dir> <mode> <log-prefix> [snapshot]: one VM, until it powers itself off.
boot() {
	local dir=$1 mode=$2 prefix=$3 snapshot=${4:-off}
	rm -f "$prefix.console" "$prefix.report"
	timeout "${SYSRUNC_STACKS_TIMEOUT:-5400}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
		-smp "${SYSRUNC_STACKS_SMP:-2}" -m "${SYSRUNC_STACKS_MEM:-4G}" -no-reboot -display none -monitor none \
		-kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
		-append "console=ttyS0 root=/dev/vda rw sysrunc.stack=$mode sysrunc.ownership=${SYSRUNC_STACKS_OWNERSHIP:-auto} sysrunc.only=${SYSRUNC_STACKS_ONLY:-} systemd.show_status=0 loglevel=4 apparmor=0" \
		-drive "file=$dir/disk.img,format=raw,if=virtio,snapshot=$snapshot" \
		-drive "file=$work/run.img,format=raw,if=virtio,readonly=on" \
		-nic user,model=virtio-net-pci \
		-serial "file:$prefix.console" -serial "file:$prefix.report" || true
}

# ensure_image <stack>: the cached, provisioned guest; prints its directory.
ensure_image() {
	local stack=$1 dir=$cache/$1-$recipe
	# build-image.sh renames its finished tree into place: disk.img there means built.
	if [ "$rebuild" = 1 ] || [ ! -e "$dir/disk.img" ]; then
		rm -rf "$dir"
		log "$stack: building its guest image ($dir)" >&2
		flock "$cache/build.lock" scripts/stacks/build-image.sh "$stack" "$dir" >&2
	fi
	if [ ! -e "$dir/stamp" ]; then
		log "$stack: provisioning boot" >&2
		boot "$dir" provision "$dir/provision"
		if ! grep -q '^PROVISION ok' "$dir/provision.report" 2>/dev/null; then
			cp "$dir/provision.console" "$cache/$stack-provision-failed.console" 2>/dev/null || true
			echo "test-stacks: $stack: provisioning failed (console: $dir/provision.console)" >&2
			tail -5 "$dir/provision.console" >&2 || true
			return 1
		fi
		date -u +%FT%TZ >"$dir/stamp"
	fi
	echo "$dir"
}

declare -A result=() facts=()
checks=()
for stack in "${stacks[@]}"; do
	stack_define "$stack"
	if ! dir=$(ensure_image "$stack"); then
		result[$stack:image]="fail -"
		continue
	fi
	logs=$cache/logs/$stack-$(date -u +%Y%m%dT%H%M%S)
	mkdir -p "${logs%/*}"
	log "$stack: booting ($STACK_TITLE); console: $logs.console"
	t=$(date +%s)
	boot "$dir" check "$logs" on
	log "$stack: VM done in $(($(date +%s) - t)) s"
	grep -q '^DONE' "$logs.report" 2>/dev/null || log "$stack: the guest did not finish its checks (see $logs.console)"
	while read -r kind name rest; do
		case $kind in
		FACT) facts[$stack:$name]=$rest ;;
		CHECK)
			[[ " ${checks[*]} " == *" $name "* ]] || checks+=("$name")
			result[$stack:$name]=$rest
			;;
		esac
	done < <(tr -d '\r' <"$logs.report") # the guest's tty writes CR LF
done

# ---------------------------------------------------------------- the table
echo
printf '%-24s' "check"
for stack in "${stacks[@]}"; do printf ' | %-16s' "$stack"; done
echo
for fact in kernel runc containerd docker podman cgroup ownership exit-hand-backs; do
	printf '%-24s' "  $fact"
	for stack in "${stacks[@]}"; do printf ' | %-16.16s' "${facts[$stack:$fact]:--}"; done
	echo
done
status=0
for check in image "${checks[@]}"; do
	[ "$check" = image ] && [ -z "$(for s in "${stacks[@]}"; do echo "${result[$s:image]:-}"; done)" ] && continue
	printf '%-24s' "$check"
	for stack in "${stacks[@]}"; do
		read -r verdict ms _ <<<"${result[$stack:$check]:-missing -}"
		[ "$verdict" = pass ] || [ "$verdict" = skip ] || status=1
		if [[ "$ms" =~ ^[0-9]+$ ]]; then cell="$verdict $((ms / 1000)).$((ms % 1000 / 100)) s"; else cell=$verdict; fi
		printf ' | %-16s' "$cell"
	done
	echo
done
echo
for stack in "${stacks[@]}"; do
	for check in "${checks[@]}"; do
		read -r verdict _ detail <<<"${result[$stack:$check]:-missing - -}"
		[ "$verdict" = pass ] || echo "$stack $check: $verdict: $detail"
	done
done
exit $status
