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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static int fail(const char *what, const char *path) {
	fprintf(stderr, "sysrunc: %s %s: %s\n", what, path, strerror(errno));
	return 127;
}

int main(int argc, char **argv) {
	char target[PATH_MAX];
	if (argc < 4) {
		fputs("usage: sysrunc-bundle-exec <prepared-config> <caller-bundle> <runtime> [args...]\n", stderr);
		return 2;
	}
	if (snprintf(target, sizeof target, "%s/config.json", argv[2]) >= (int)sizeof target) {
		errno = ENAMETOOLONG;
		return fail("bundle", argv[2]);
	}
	if (unshare(CLONE_NEWNS) != 0) return fail("unshare", "mount namespace");
	if (mount("none", "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) return fail("make slave", "/");
	if (mount(argv[1], target, NULL, MS_BIND, NULL) != 0) return fail("bind prepared config over", target);
	execvp(argv[3], argv + 3);
	return fail("exec", argv[3]);
}
