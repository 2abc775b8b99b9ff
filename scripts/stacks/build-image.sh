#!/usr/bin/env bash
# Builds one stack's guest (scripts/test-stacks.sh calls it; root, Debian's mirror, no KVM needed):
#   <out>/disk.img    ext4 root made with `mkfs.ext4 -d` from a debootstrap tree (no loop mount)
#   <out>/vmlinuz     the stack's Debian kernel package's kernel
#   <out>/initrd.img  busybox + that kernel's virtio/ext4 modules + scripts/stacks/initramfs-init
# The tree also holds, for the guest's one-time provisioning boot, /var/lib/sysrunc-stack/
# self.tar (the guest's own userland as an image with dockerd and systemd: the Docker-in-Docker and
# systemd checks use it) and bb.tar (a busybox rootfs).
# usage: build-image.sh <stack> <out-dir>   (stacks: scripts/stacks/stacks.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/stacks/stacks.sh source-path=SCRIPTDIR
. "$here/stacks.sh"

stack=${1:?usage: build-image.sh <stack> <out-dir>}
out=${2:?usage: build-image.sh <stack> <out-dir>}
stack_define "$stack"
mirror=${SYSRUNC_STACKS_MIRROR:-http://deb.debian.org/debian}
debs=${out%/*}/debs-$STACK_SUITE

t0=$(date +%s)
log() { printf 'build-image %s [%4ds] %s\n' "$stack" $(($(date +%s) - t0)) "$*"; }

rm -rf "$out.tmp"
mkdir -p "$out.tmp" "$debs"
root=$out.tmp/rootfs

log "debootstrap $STACK_SUITE (${STACK_PACKAGES// /,})"
debootstrap --variant=minbase --cache-dir="$debs" --include="${STACK_PACKAGES// /,}" \
	"$STACK_SUITE" "$root" "$mirror" >"$out.tmp/debootstrap.log" 2>&1 ||
	{ tail -20 "$out.tmp/debootstrap.log" >&2; exit 1; }

in_root() { chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive "$@"; }
# No service starts inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

if [ -n "$STACK_KERNEL_SUITE" ]; then
	log "kernel from $STACK_KERNEL_SUITE"
	echo "deb $mirror $STACK_KERNEL_SUITE main" >"$root/etc/apt/sources.list.d/kernel.list"
	mount --bind /proc "$root/proc"
	trap 'umount "$root/proc" 2>/dev/null || true' EXIT
	in_root apt-get update -qq >>"$out.tmp/debootstrap.log" 2>&1
	in_root apt-get install -y -qq --no-install-recommends -t "$STACK_KERNEL_SUITE" linux-image-amd64 \
		>>"$out.tmp/debootstrap.log" 2>&1 || { tail -20 "$out.tmp/debootstrap.log" >&2; exit 1; }
	umount "$root/proc"
	trap - EXIT
	rm "$root/etc/apt/sources.list.d/kernel.list"
fi
in_root apt-get clean

log "configure"
echo "sysrunc-$stack" >"$root/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
in_root passwd -d root >/dev/null
# Engines start from the check script, after it has registered sysrunc with them.
for unit in docker.service docker.socket containerd.service podman.socket apt-daily.timer apt-daily-upgrade.timer \
	e2scrub_all.timer fstrim.timer systemd-timesyncd.service; do
	in_root systemctl disable "$unit" >/dev/null 2>&1 || true
done
mkdir -p "$root/var/lib/sysrunc-stack"
install -m 0644 "$here/sysrunc-stack.service" "$root/etc/systemd/system/sysrunc-stack.service"
in_root systemctl enable sysrunc-stack.service >/dev/null 2>&1

log "image of the guest userland (self.tar) and busybox (bb.tar)"
self=$out.tmp/self
mkdir -p "$self"
tar -C "$root" --exclude=./boot --exclude=./usr/lib/modules --exclude=./lib/modules --exclude=./usr/share/doc \
	--exclude=./usr/share/man --exclude=./usr/share/locale --exclude=./var/cache/apt --exclude=./var/lib/apt/lists \
	--exclude=./var/lib/sysrunc-stack -cf - . | tar -C "$self" -xf -
# Inside a container it is a plain system: no check service, no auto-started engines.
rm -f "$self/etc/systemd/system/multi-user.target.wants/sysrunc-stack.service" "$self/etc/systemd/system/sysrunc-stack.service"
ln -sf /dev/null "$self/etc/systemd/system/getty@tty1.service"
rm -f "$self/usr/sbin/policy-rc.d"
tar -C "$self" -cf "$root/var/lib/sysrunc-stack/self.tar" .
rm -rf "$self"
bb=$out.tmp/bb
mkdir -p "$bb/bin"
cp /bin/busybox "$bb/bin/busybox"
chroot "$bb" /bin/busybox --install -s /bin
tar -C "$bb" -cf "$root/var/lib/sysrunc-stack/bb.tar" .
rm -rf "$bb"
rm -f "$root/usr/sbin/policy-rc.d"

log "kernel and initramfs"
kver=$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
cp "$root/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
"$here/make-initramfs.sh" "$root/lib/modules/$kver" "$here/initramfs-init" "$out.tmp/initrd.img"
echo "$kver" >"$out.tmp/kernel-version"

log "disk image"
rm -rf "$root/boot"/initrd.img* # initramfs-tools' own, unused
mkfs.ext4 -q -F -L stackroot -d "$root" "$out.tmp/disk.img" "${SYSRUNC_STACKS_DISK_SIZE:-12G}"
rm -rf "$root"
rm -rf "$out"
mv "$out.tmp" "$out"
log "done: $out (kernel $kver)"
