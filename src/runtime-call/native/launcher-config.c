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

#include "json.h"
#include "launcher.h"

enum { MAX_CONFIG = 64 << 10 };

struct file_values {
	const char *runtime, *socket;
};

/* One member of the object (json.c's object()): a known key and a non-empty string; 0 if not. */
static int config_member(struct cursor *c, const char *key, void *ctx) {
	struct file_values *values = ctx;
	struct buf value = {0};
	if (!c_string(c, &value) || value.len == 0) {
		free(value.data);
		return 0;
	}
	if (strcmp(key, "runtime") == 0) values->runtime = value.data;
	else if (strcmp(key, "managerSocket") == 0) values->socket = value.data;
	else {
		free(value.data);
		return 0;
	}
	return 1;
}

/*
 * text (NUL-terminated): the object, or -1. Only bytes bin/sysrunc reads itself, so that no file
 * reads one way here and another there: printable ASCII, space, tab and newline; no backslash
 * (so json.c's reader never meets an escape).
 */
static int parse_object(const char *text, struct file_values *values) {
	for (const char *p = text; *p != '\0'; p++)
		if ((*p < 0x20 || *p > 0x7e || *p == '\\') && *p != '\t' && *p != '\n') return -1;
	struct cursor c = {text, text + strlen(text)};
	if (!object(&c, config_member, values)) return -1;
	ws(&c);
	return c.p == c.end ? 0 : -1;
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
		struct file_values file = {"", ""};
		if (stat(path, &st) == 0) {
			if (!S_ISREG(st.st_mode) || access(path, R_OK) != 0) return -1;
			char *text = read_config(path);
			if (text == NULL || parse_object(text, &file) != 0) return -1;
		}
		if (*out->runtime == '\0') out->runtime = file.runtime;
		if (*out->socket == '\0') out->socket = file.socket;
	}
	if (*out->runtime == '\0') out->runtime = "runc";
	if (*out->socket == '\0') out->socket = "/run/sysrunc/mgr.sock";
	return 0;
}
