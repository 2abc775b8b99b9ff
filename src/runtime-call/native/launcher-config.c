/*
 * The runtime and the manager socket, resolved as bin/sysrunc resolves them: $SYSRUNC_RUNTIME and
 * $SYSRUNC_MGR_SOCKET; for either unset or empty, the config file ($SYSRUNC_CONFIG, unset:
 * /etc/sysrunc/config.json; absent: no values); then runc and /run/sysrunc/mgr.sock.
 *
 * This reads a narrower set of files than bin/sysrunc: one JSON object of the members "runtime"
 * and "managerSocket" (in any order, repeated: the last wins), each a non-empty string of
 * printable ASCII without a backslash, with spaces, tabs and newlines between the tokens. Any
 * other file, or one that is there but is no readable regular file, is bin/sysrunc's to read (it
 * defers what it does not read to the per-call binary, which prints the values or the error).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"

enum { MAX_CONFIG = 64 << 10 };

struct config_cursor {
	char *p;
	const char *file_runtime, *file_socket;
};

static void skip_blank(struct config_cursor *c) {
	while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n') c->p++;
}

/* A string of printable ASCII without a backslash, NUL-terminated in place; NULL if not one. */
static const char *plain_string(struct config_cursor *c) {
	if (*c->p != '"') return NULL;
	char *start = ++c->p;
	while (*c->p >= 0x20 && *c->p <= 0x7e && *c->p != '"' && *c->p != '\\') c->p++;
	if (*c->p != '"') return NULL;
	*c->p++ = '\0';
	return start;
}

static int member(struct config_cursor *c) {
	const char *key = plain_string(c);
	if (key == NULL) return -1;
	skip_blank(c);
	if (*c->p++ != ':') return -1;
	skip_blank(c);
	const char *value = plain_string(c);
	if (value == NULL || *value == '\0') return -1;
	if (strcmp(key, "runtime") == 0) c->file_runtime = value;
	else if (strcmp(key, "managerSocket") == 0) c->file_socket = value;
	else return -1;
	return 0;
}

/* text (NUL-terminated, no NUL inside): the object, or -1. */
static int parse_object(char *text, struct config_cursor *c) {
	c->p = text;
	skip_blank(c);
	if (*c->p++ != '{') return -1;
	skip_blank(c);
	if (*c->p == '}') c->p++;
	else
		for (;;) {
			if (member(c) != 0) return -1;
			skip_blank(c);
			if (*c->p == ',') {
				c->p++;
				skip_blank(c);
				continue;
			}
			if (*c->p++ != '}') return -1;
			break;
		}
	skip_blank(c);
	return *c->p == '\0' ? 0 : -1;
}

/* The whole file, NUL-terminated; NULL if unreadable, too long or holding a NUL. */
static char *read_config(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return NULL;
	char *text = malloc(MAX_CONFIG + 1);
	size_t n = 0;
	ssize_t got = 1;
	while (text != NULL && n < MAX_CONFIG && (got = read(fd, text + n, MAX_CONFIG - n)) > 0) n += (size_t)got;
	close(fd);
	if (text == NULL || got < 0 || n >= MAX_CONFIG || memchr(text, '\0', n) != NULL) {
		free(text);
		return NULL;
	}
	text[n] = '\0';
	return text;
}

/* Unset and empty alike, as bin/sysrunc's `${X:-}`. */
static const char *env_value(const char *name) {
	const char *value = getenv(name);
	return value == NULL ? "" : value;
}

int launcher_read_config(struct launcher_config *out) {
	out->runtime = env_value("SYSRUNC_RUNTIME");
	out->socket = env_value("SYSRUNC_MGR_SOCKET");
	if (*out->runtime == '\0' || *out->socket == '\0') {
		/* Unset and empty differ here, as in the per-call binary (`??`). */
		const char *path = getenv("SYSRUNC_CONFIG");
		if (path == NULL) path = "/etc/sysrunc/config.json";
		struct stat st;
		struct config_cursor c = {NULL, "", ""};
		if (stat(path, &st) == 0) {
			if (!S_ISREG(st.st_mode) || access(path, R_OK) != 0) return -1;
			char *text = read_config(path);
			if (text == NULL || parse_object(text, &c) != 0) return -1;
		}
		if (*out->runtime == '\0') out->runtime = c.file_runtime;
		if (*out->socket == '\0') out->socket = c.file_socket;
	}
	if (*out->runtime == '\0') out->runtime = "runc";
	if (*out->socket == '\0') out->socket = "/run/sysrunc/mgr.sock";
	return 0;
}
