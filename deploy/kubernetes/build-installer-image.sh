#!/bin/sh
# Builds the DaemonSet's installer image from the .deb, on a Debian bookworm base made here with
# debootstrap (no registry): the .deb's files unpacked into it (no maintainer scripts: nothing runs
# at build time) and deploy/kubernetes/sysrunc-node-installer as its entrypoint; `docker import`.
# usage: build-installer-image.sh <sysrunc_*.deb> [--tag <image>] [--base <rootfs dir to copy>]
#                                 [--rootfs-tar-out <file> | --rootfs-tar <file>]
#   --base: an existing debootstrap --variant=minbase rootfs (saves the download); without it,
#   debootstrap runs against the mirror of the host's apt sources (or $DEBIAN_MIRROR).
#   --rootfs-tar-out: write the image's root filesystem as a tar and stop (no Docker needed);
#   --rootfs-tar: import such a tar instead of building one (a machine without the base: a test VM).
set -eu

deb=${1:?usage: build-installer-image.sh <sysrunc_*.deb> [--tag <image>] [--base <dir>] [--rootfs-tar-out <file> | --rootfs-tar <file>]}
shift
tag=
base=
tar_out=
tar_in=
while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=$2; shift 2 ;;
	--base) base=$2; shift 2 ;;
	--rootfs-tar-out) tar_out=$2; shift 2 ;;
	--rootfs-tar) tar_in=$2; shift 2 ;;
	*) echo "build-installer-image: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -r "$deb" ] || { echo "build-installer-image: $deb: no such file" >&2; exit 1; }
version=$(dpkg-deb --field "$deb" Version)
tag=${tag:-sysrunc-installer:$version}
here=$(cd "$(dirname "$0")" && pwd)

import_image() {
	docker import --change 'ENTRYPOINT ["/usr/local/bin/sysrunc-node-installer"]' --change 'CMD ["run"]' \
		--message "sysrunc node installer $version" - "$tag" >/dev/null
	echo "$tag"
}
if [ -n "$tar_in" ]; then
	[ -r "$tar_in" ] || { echo "build-installer-image: $tar_in: no such file" >&2; exit 1; }
	import_image <"$tar_in"
	exit 0
fi

rootfs=$(mktemp -d /var/tmp/sysrunc-installer-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
if [ -n "$base" ]; then
	cp -a "$base/." "$rootfs/"
else
	mirror=${DEBIAN_MIRROR:-$(awk '/^deb / && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)}
	debootstrap --variant=minbase --include=curl,ca-certificates bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
	rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
fi
# A merged-/usr base: the .deb's /lib/systemd must not replace the /lib symlink with a directory.
dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$rootfs"
install -m 0755 "$here/sysrunc-node-installer" "$rootfs/usr/local/bin/sysrunc-node-installer"
if [ -n "$tar_out" ]; then
	tar --numeric-owner -C "$rootfs" -cf "$tar_out" .
	echo "$tar_out"
else
	tar --numeric-owner -C "$rootfs" -c . | import_image
fi
