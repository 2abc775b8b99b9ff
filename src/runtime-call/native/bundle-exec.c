/*
 * sysrunc-bundle-exec <prepared-config> <caller-bundle> <runtime> [args...]
 *
 * bin/sysrunc runs runc through this for create and run, with --bundle <caller-bundle>: in a
 * mount namespace of runc's own, the manager's prepared config.json is bind-mounted over the
 * caller's <caller-bundle>/config.json, then runc is exec'd (same pid). runc reads the prepared
 * config, yet its bundle (runc records its working directory after chdir(--bundle): `runc state`,
 * `runc list`, the state hooks get on stdin) is the caller's, as the runtime spec says. Nothing in
 * the caller's bundle is written, and nothing is seen outside: mounts are made slaves first, so
 * the bind propagates to no other namespace, and the namespace goes when runc and its hooks exit.
 * (Containers get mount namespaces of their own user namespace, where shared mounts become slaves
 * anyway: making runc's slaves changes no propagation a sysrunc container could have.)
 *
 * The namespace's copies of other containers' overlays are detached in it at once: on a host whose
 * mounts are private (no systemd), a copy would keep another container's overlay alive after the
 * manager unmounted it, and the overlay mounted next over the same upper dir would be a second
 * live one (the kernel's "upperdir is in-use" warning). An overlay whose mount point the prepared
 * config names (the container's own root, or a directory above it) is kept. From the unshare until
 * that detach is done, the run base's mount-ns.lock is held shared: the manager mounts the
 * incoming overlay of a swap over one upper dir holding it exclusively (src/host/mount-ns-lock.ts),
 * so it never mounts one while a copy of the outgoing one lives here.
 * The steps are bundle-ns.c, shared with sysrunc-prepare-call (which execs runc itself).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

#include "bundle-ns.h"

int main(int argc, char **argv) {
	if (argc < 4) {
		fputs("usage: sysrunc-bundle-exec <prepared-config> <caller-bundle> <runtime> [args...]\n", stderr);
		return 2;
	}
	int status = enter_bundle_namespace(argv[1], argv[2]);
	if (status != 0) return status;
	execvp(argv[3], argv + 3);
	return bundle_ns_fail("exec", argv[3]);
}
