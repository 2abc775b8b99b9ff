# shellcheck shell=sh
# Issue 23 on containerd 2.x: the DaemonSet's installer image, built in the guest from the .deb on
# the run disk (deploy/kubernetes/build-installer-image.sh) over the guest's own userland as the
# Debian base, then test/stacks/node-installer-check.ts: a real containerd 2.1 on the installer's
# version 3 config, a CRI pod with handler sysrunc, the uninstall byte for byte.
# Sourced by scripts/stacks/guest-checks.sh (it defines check, $stack):
#   SYSRUNC_STACKS_EXTRA=test/stacks/node-installer-extra.sh SYSRUNC_STACKS_ONLY=node-installer \
#     SYSRUNC_STACKS_SMP=1 SYSRUNC_STACKS_MEM=3G scripts/test-stacks.sh sid
# shellcheck disable=SC2154 # $stack: guest-checks.sh's
check_node_installer() {
	base=$(mktemp -d /var/tmp/sysrunc-installer-base.XXXXXX)
	cid=$(docker create stack/self:local true) || return 1
	docker export "$cid" | tar -x -C "$base" || return 1
	docker rm "$cid" >/dev/null
	set -- "$stack"/sysrunc/dist/sysrunc_*_amd64.deb
	tag=$("$stack/sysrunc/deploy/kubernetes/build-installer-image.sh" "$1" --base "$base") || return 1
	rm -rf "$base"
	echo "installer image $tag"
	cd "$stack/sysrunc" && node --import tsx test/stacks/node-installer-check.ts "$tag" "$stack/oci/pause.tar" "$stack/oci/bb.tar"
}
check node-installer check_node_installer
