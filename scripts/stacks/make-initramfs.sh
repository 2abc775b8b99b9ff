#!/usr/bin/env bash
# make-initramfs.sh <modules-dir> <init-script> <out>: a gzip'd newc cpio with the host's static
# busybox, <init-script> as /init and the modules the root disk needs (virtio-pci, virtio-blk, ext4
# and their dependencies from modules.dep, dependencies first, decompressed), listed in /modules/order.
set -euo pipefail
moddir=${1:?} init=${2:?} out=${3:?}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/modules"
cp /bin/busybox "$work/bin/busybox"
cp "$init" "$work/init"
chmod 755 "$work/init"

declare -A path_of=() done_=()
while IFS=: read -r file _; do
	name=${file##*/}
	name=${name%%.ko*}
	path_of[${name//-/_}]=$file
done <"$moddir/modules.dep"
deps_of() { grep -m1 "^$1:" "$moddir/modules.dep" | cut -d: -f2; }
add() { # add <modules.dep path>: its dependencies first
	local file=$1 dep name
	[ -z "${done_[$file]:-}" ] || return 0
	done_[$file]=1
	for dep in $(deps_of "$file"); do add "$dep"; done
	name=${file##*/}
	name=${name%%.ko*}.ko
	case $file in
	*.xz) xz -dc "$moddir/$file" >"$work/modules/$name" ;;
	*.zst) zstd -qdc "$moddir/$file" >"$work/modules/$name" ;;
	*.gz) gzip -dc "$moddir/$file" >"$work/modules/$name" ;;
	*) cp "$moddir/$file" "$work/modules/$name" ;;
	esac
	echo "$name" >>"$work/modules/order"
}
: >"$work/modules/order"
# crc32c: ext4's checksum, requested through the crypto API (not in modules.dep).
for wanted in virtio_pci virtio_blk crc32c_generic crc32c_intel ext4; do
	[ -n "${path_of[$wanted]:-}" ] && add "${path_of[$wanted]}"
done
(cd "$work" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$out"
