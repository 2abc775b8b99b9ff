# shellcheck shell=sh
# Issue 23 on containerd 2.x: the DaemonSet's installer image, imported in the guest from the root
# filesystem tar build-installer-image.sh made on the host from the .deb (the guest has no Debian
# base to build on, and building there under emulation takes long), then
# test/stacks/node-installer-check.ts: a real containerd 2.1 on the installer's version 3 config, a
# CRI pod with handler sysrunc, the uninstall byte for byte. On the host:
#   npm run package
#   deploy/kubernetes/build-installer-image.sh dist/sysrunc_*_amd64.deb --base <bookworm minbase> \
#     --rootfs-tar-out dist/sysrunc-installer-rootfs.tar
#   SYSRUNC_STACKS_EXTRA=test/stacks/node-installer-extra.sh SYSRUNC_STACKS_ONLY=node-installer \
#     SYSRUNC_STACKS_SMP=1 SYSRUNC_STACKS_MEM=3G scripts/test-stacks.sh sid
# Sourced by scripts/stacks/guest-checks.sh (it defines check and $stack).
# shellcheck disable=SC2154 # $stack: guest-checks.sh's
check_node_installer() {
	set -- "$stack"/sysrunc/dist/sysrunc_*_amd64.deb
	tag=$("$stack/sysrunc/deploy/kubernetes/build-installer-image.sh" "$1" --rootfs-tar "$stack/sysrunc/dist/sysrunc-installer-rootfs.tar") || return 1
	echo "installer image $tag"
	cd "$stack/sysrunc" && node --import tsx test/stacks/node-installer-check.ts "$tag" "$stack/oci/pause.tar" "$stack/oci/bb.tar"
}
check node-installer check_node_installer
