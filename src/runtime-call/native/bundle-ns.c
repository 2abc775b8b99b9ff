/*
 * runc's mount namespace for a prepared create or run (bundle-ns.h), used by sysrunc-bundle-exec
 * and by sysrunc-prepare-call, which execs runc itself. The why of each step is in bundle-exec.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include "bundle-ns.h"
#include "../../host/native/mountinfo-unescape.h"

/* The prepared config as text (at most 4 MiB); NULL if it cannot be read (then nothing is detached). */
static char *read_config(const char *path) {
	FILE *f = fopen(path, "re");
	if (f == NULL) return NULL;
	size_t cap = 4u << 20, len = 0;
	char *text = malloc(cap + 1);
	if (text != NULL) {
		len = fread(text, 1, cap, f);
		text[len] = '\0';
	}
	fclose(f);
	return text;
}

static void detach_other_overlays(const char *config_path) {
	char *config = read_config(config_path);
	FILE *info = config == NULL ? NULL : fopen("/proc/self/mountinfo", "re");
	if (info == NULL) {
		free(config);
		return;
	}
	char *line = NULL;
	size_t size = 0;
	while (getline(&line, &size, info) > 0) {
		/* id parent major:minor root mountpoint options [optional...] - fstype source super */
		char *fields[5], *rest = line, *sep = strstr(line, " - ");
		int n = 0;
		if (sep == NULL || strncmp(sep, " - overlay ", 11) != 0) continue;
		while (n < 5 && (fields[n] = strsep(&rest, " ")) != NULL) n++;
		if (n < 5) continue;
		mountinfo_unescape(fields[4]);
		if (strcmp(fields[4], "/") == 0 || strstr(config, fields[4]) != NULL) continue;
		umount2(fields[4], MNT_DETACH); /* one already gone with a parent's: EINVAL, fine */
	}
	free(line);
	fclose(info);
	free(config);
}

/* <run base>/mount-ns.lock, the run base being three levels above <run base>/bundles/<id>/config.json;
 * -1 (no lock) when the path is shorter or the file cannot be opened. */
static int lock_mount_ns(const char *config_path) {
	char lock[PATH_MAX];
	if (snprintf(lock, sizeof lock, "%s", config_path) >= (int)sizeof lock) return -1;
	for (int i = 0; i < 3; i++) {
		char *slash = strrchr(lock, '/');
		if (slash == NULL || slash == lock) return -1;
		*slash = '\0';
	}
	if (strlen(lock) + sizeof "/mount-ns.lock" > sizeof lock) return -1;
	strcat(lock, "/mount-ns.lock");
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_SH) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int bundle_ns_fail(const char *what, const char *path) {
	fprintf(stderr, "sysrunc: %s %s: %s\n", what, path, strerror(errno));
	return 127;
}

int enter_bundle_namespace(const char *prepared_config, const char *caller_bundle) {
	char target[PATH_MAX];
	if (snprintf(target, sizeof target, "%s/config.json", caller_bundle) >= (int)sizeof target) {
		errno = ENAMETOOLONG;
		return bundle_ns_fail("bundle", caller_bundle);
	}
	int lock = lock_mount_ns(prepared_config);
	if (unshare(CLONE_NEWNS) != 0) return bundle_ns_fail("unshare", "mount namespace");
	if (mount("none", "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) return bundle_ns_fail("make slave", "/");
	detach_other_overlays(prepared_config);
	if (lock >= 0) close(lock);
	if (mount(prepared_config, target, NULL, MS_BIND, NULL) != 0) return bundle_ns_fail("bind prepared config over", target);
	return 0;
}
