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

/* mountinfo escapes space, tab, newline and backslash as \ooo; undone in place. */
static void unescape(char *s) {
	char *out = s;
	for (char *in = s; *in != '\0'; in++) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
			*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 3;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
}

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

/* One line of mountinfo, as far as the detach needs it. */
struct mount_entry {
	int id;
	int parent;
	int shared;    /* a peer of the host's mount ("shared:N" right after the unshare) */
	int overlay;
	char *point;   /* unescaped, inside text */
	char *text;    /* the line's own copy */
};

struct mount_table {
	struct mount_entry *entries;
	size_t count;
};

/* id parent major:minor root mountpoint options [optional...] - fstype source super */
static int parse_mount_line(char *line, struct mount_entry *e) {
	char *sep = strstr(line, " - "), *rest = line, *field;
	if (sep == NULL) return -1;
	*sep = '\0';
	e->overlay = strncmp(sep + 3, "overlay ", 8) == 0;
	e->shared = 0;
	e->point = NULL;
	e->text = line;
	for (int n = 0; (field = strsep(&rest, " ")) != NULL; n++) {
		if (n == 0) e->id = atoi(field);
		else if (n == 1) e->parent = atoi(field);
		else if (n == 4) e->point = field;
		else if (n >= 6 && strncmp(field, "shared:", 7) == 0) e->shared = 1;
	}
	unescape(e->point);
	return 0;
}

/* This namespace's mounts, read right after the unshare (before anything is made a slave). */
static struct mount_table read_mounts(void) {
	struct mount_table t = {NULL, 0};
	FILE *info = fopen("/proc/self/mountinfo", "re");
	if (info == NULL) return t;
	size_t cap = 0;
	char *line = NULL;
	size_t size = 0;
	while (getline(&line, &size, info) > 0) {
		if (t.count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			struct mount_entry *grown = realloc(t.entries, cap * sizeof *grown);
			if (grown == NULL) break;
			t.entries = grown;
		}
		struct mount_entry *e = &t.entries[t.count];
		char *copy = strdup(line);
		if (copy == NULL) break;
		copy[strcspn(copy, "\n")] = '\0';
		if (parse_mount_line(copy, e) != 0 || e->point == NULL) {
			free(copy);
			continue;
		}
		t.count++;
	}
	free(line);
	fclose(info);
	return t;
}

static void free_mounts(struct mount_table *t) {
	for (size_t i = 0; i < t->count; i++) free(t->entries[i].text);
	free(t->entries);
}

/*
 * Whether the host's own unmount of this copy's original reaches it here: its parent is a peer of
 * the host's parent (shared), so after MS_SLAVE it receives the host's umount events, and nothing
 * is mounted on the copy (a copy with mounts on it would stay). Then it needs no detach of its own.
 */
static int left_to_host(const struct mount_table *t, const struct mount_entry *e) {
	int parent_shared = 0;
	for (size_t i = 0; i < t->count; i++) {
		if (t->entries[i].parent == e->id) return 0;
		if (t->entries[i].id == e->parent) parent_shared = t->entries[i].shared;
	}
	return parent_shared;
}

/* Other containers' overlays whose copies only a detach of our own removes (see bundle-exec.c). */
static void detach_other_overlays(const char *config_path, struct mount_table *mounts) {
	char *config = read_config(config_path);
	if (config == NULL) return;
	for (size_t i = 0; i < mounts->count; i++) {
		const struct mount_entry *e = &mounts->entries[i];
		if (!e->overlay || strcmp(e->point, "/") == 0 || strstr(config, e->point) != NULL) continue;
		if (left_to_host(mounts, e)) continue;
		umount2(e->point, MNT_DETACH); /* one already gone with a parent's: EINVAL, fine */
	}
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
	/* Read before MS_SLAVE: "shared:" tells which copies are peers of the host's mounts. */
	struct mount_table mounts = read_mounts();
	if (mount("none", "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) return bundle_ns_fail("make slave", "/");
	detach_other_overlays(prepared_config, &mounts);
	free_mounts(&mounts);
	if (lock >= 0) close(lock);
	if (mount(prepared_config, target, NULL, MS_BIND, NULL) != 0) return bundle_ns_fail("bind prepared config over", target);
	return 0;
}
