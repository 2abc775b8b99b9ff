#!/bin/sh
# Builds the DaemonSet's installer image from the .deb, on a Debian bookworm base made here with
# debootstrap (no registry): the .deb's files unpacked into it (no maintainer scripts: nothing runs
# at build time) and deploy/kubernetes/sysrunc-node-installer as its entrypoint; `docker import`.
# usage: build-installer-image.sh <sysrunc_*.deb> [--tag <image>] [--base <rootfs dir to copy>]
#   --base: an existing debootstrap --variant=minbase rootfs (saves the download); without it,
#   debootstrap runs against the mirror of the host's apt sources (or $DEBIAN_MIRROR).
set -eu

deb=${1:?usage: build-installer-image.sh <sysrunc_*.deb> [--tag <image>] [--base <dir>]}
shift
tag=
base=
while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=$2; shift 2 ;;
	--base) base=$2; shift 2 ;;
	*) echo "build-installer-image: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -r "$deb" ] || { echo "build-installer-image: $deb: no such file" >&2; exit 1; }
version=$(dpkg-deb --field "$deb" Version)
tag=${tag:-sysrunc-installer:$version}
here=$(cd "$(dirname "$0")" && pwd)

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
tar --numeric-owner -C "$rootfs" -c . | docker import \
	--change 'ENTRYPOINT ["/usr/local/bin/sysrunc-node-installer"]' --change 'CMD ["run"]' \
	--message "sysrunc node installer $version" - "$tag" >/dev/null
echo "$tag"
