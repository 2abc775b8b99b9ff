# shellcheck shell=bash
# shellcheck disable=SC2034 # the STACK_* variables are read by the scripts that source this file
# The stacks of scripts/test-stacks.sh: Debian userland (debootstrap suite) + the Debian kernel
# package it boots. Sourced by test-stacks.sh and build-image.sh.
STACKS_ALL="bookworm trixie sid bookworm-k510"

# Common guest packages: init, the engines (Debian's own), and what the checks use (nftables and
# catatonit: podman's pod network and infra container).
STACK_COMMON_PACKAGES="systemd-sysv udev dbus kmod iproute2 iptables procps util-linux e2fsprogs ca-certificates uidmap docker.io containerd runc podman containernetworking-plugins tini nftables catatonit"

# stack_define <stack>: sets STACK_SUITE, STACK_KERNEL_SUITE (empty: the suite's own kernel),
# STACK_PACKAGES and STACK_TITLE.
stack_define() {
	STACK_KERNEL_SUITE=
	case $1 in
	bookworm)
		STACK_SUITE=bookworm
		STACK_PACKAGES="$STACK_COMMON_PACKAGES linux-image-amd64"
		STACK_TITLE="Debian 12, its kernel 6.1"
		;;
	trixie)
		STACK_SUITE=trixie
		STACK_PACKAGES="$STACK_COMMON_PACKAGES docker-cli linux-image-amd64"
		STACK_TITLE="Debian 13, its kernel 6.12"
		;;
	sid)
		STACK_SUITE=sid
		STACK_PACKAGES="$STACK_COMMON_PACKAGES docker-cli linux-image-amd64"
		STACK_TITLE="Debian sid, its kernel"
		;;
	bookworm-k510)
		STACK_SUITE=bookworm
		STACK_KERNEL_SUITE=bullseye
		# linux-image's own dependencies, so the bullseye kernel installs over a bookworm userland.
		STACK_PACKAGES="$STACK_COMMON_PACKAGES initramfs-tools linux-base"
		STACK_TITLE="Debian 12 userland, Debian 11's kernel 5.10"
		;;
	*)
		echo "test-stacks: unknown stack '$1' (stacks: $STACKS_ALL)" >&2
		return 2
		;;
	esac
}
