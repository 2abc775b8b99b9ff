/*
 * exec_grant(<process-file>): dist/sysrunc-exec-grant's body (exec-grant-main.c), and the C
 * launcher's (launcher.c) without a process for it.
 *
 * The fast path of the capability grant for `exec` into a system container (bin/sysrunc runs it
 * when the manager's hint says "grant-capabilities"): the same rewrite as the per-call binary's
 * exec command (src/runtime-call/commands/exec.ts, systemProcess in spec-transform/system-capabilities.ts),
 * without starting a JavaScript runtime for it. Root (user.uid absent or 0) gets every capability
 * runc can grant in bounding, effective and permitted; any other user in bounding only; the other
 * members of "capabilities" (inheritable, ambient) and everything else in the file stay as written,
 * byte for byte. "Every capability" is the CapBnd of $SYSRUNC_CALLER_PID (the shell that becomes
 * runc), named as in src/oci/capabilities.ts (the table is generated from it: capability-names.h).
 *
 * 0: the file was rewritten (atomically: a temp file in its directory, renamed over it).
 * EXEC_GRANT_NOT_HANDLED: nothing was written, and bin/sysrunc asks the per-call binary instead, which
 * decides (it leaves an unreadable file alone, reports a write error). That includes a file this
 * small scanner does not take as certain: an escaped key, a duplicate key, a uid or a capabilities
 * value of an unexpected type, nesting deeper than 64, more than 16 MiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capability-names.h"
#include "exec-grant.h"

enum { NOT_HANDLED = EXEC_GRANT_NOT_HANDLED, MAX_DEPTH = 64, MAX_FILE = 16 << 20 };

/* By bit, from src/oci/capabilities.ts: scripts/build.mjs generates the header into its build dir. */
static const char *const CAPABILITY_NAMES[] = { SYSRUNC_CAPABILITY_NAMES };
enum { CAPABILITY_COUNT = sizeof CAPABILITY_NAMES / sizeof CAPABILITY_NAMES[0] };

/* A span of the input: [start, end). */
struct span {
	const char *start, *end;
};

static const char *skip_ws(const char *p, const char *end) {
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
	return p;
}

/* Past a JSON string starting at p (at its quote); NULL if malformed. *escaped: it holds a backslash. */
static const char *skip_string(const char *p, const char *end, int *escaped) {
	if (p >= end || *p != '"') return NULL;
	for (p++; p < end; p++) {
		if (*p == '"') return p + 1;
		if ((unsigned char)*p < 0x20) return NULL;
		if (*p == '\\') {
			if (escaped != NULL) *escaped = 1;
			if (++p >= end) return NULL;
		}
	}
	return NULL;
}

static const char *skip_digits(const char *p, const char *end) {
	const char *start = p;
	while (p < end && *p >= '0' && *p <= '9') p++;
	return p == start ? NULL : p;
}

/* Past a JSON number at p: -?digits(.digits)?([eE][+-]?digits)?; NULL if there is none. */
static const char *skip_number(const char *p, const char *end) {
	if (p < end && *p == '-') p++;
	if ((p = skip_digits(p, end)) == NULL) return NULL;
	if (p < end && *p == '.' && (p = skip_digits(p + 1, end)) == NULL) return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-')) p++;
		p = skip_digits(p, end);
	}
	return p;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* Past an object or array at p; NULL if malformed. */
static const char *skip_container(const char *p, const char *end, int depth) {
	char close = *p == '{' ? '}' : ']';
	if (depth > MAX_DEPTH) return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == close) return p + 1;
	for (;;) {
		if (close == '}') {
			if ((p = skip_string(p, end, NULL)) == NULL) return NULL;
			p = skip_ws(p, end);
			if (p >= end || *p != ':') return NULL;
			p = skip_ws(p + 1, end);
		}
		if ((p = skip_value(p, end, depth + 1)) == NULL) return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		return p < end && *p == close ? p + 1 : NULL;
	}
}

/* Past any JSON value at p (leading whitespace skipped by the caller); NULL if malformed. */
static const char *skip_value(const char *p, const char *end, int depth) {
	if (p >= end) return NULL;
	if (*p == '"') return skip_string(p, end, NULL);
	if (*p == '{' || *p == '[') return skip_container(p, end, depth);
	for (const char *const *word = (const char *const[]){"true", "false", "null", NULL}; *word != NULL; word++) {
		size_t n = strlen(*word);
		if ((size_t)(end - p) >= n && memcmp(p, *word, n) == 0) return p + n;
	}
	return skip_number(p, end);
}

/*
 * The members of the object at p, one call per member: key (without quotes) and value span.
 * Returns the end of the object, or NULL if malformed or a key is escaped (it could spell a
 * member this program looks for).
 */
typedef int (*member_fn)(struct span key, struct span value, void *ctx);
static const char *each_member(const char *p, const char *end, member_fn fn, void *ctx) {
	if (p >= end || *p != '{') return NULL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') return p + 1;
	for (;;) {
		int escaped = 0;
		const char *key_end = skip_string(p, end, &escaped);
		if (key_end == NULL || escaped) return NULL;
		struct span key = {p + 1, key_end - 1};
		p = skip_ws(key_end, end);
		if (p >= end || *p != ':') return NULL;
		p = skip_ws(p + 1, end);
		const char *value_end = skip_value(p, end, 1);
		if (value_end == NULL || fn(key, (struct span){p, value_end}, ctx) != 0) return NULL;
		p = skip_ws(value_end, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		return p < end && *p == '}' ? p + 1 : NULL;
	}
}

static int key_is(struct span key, const char *name) {
	size_t n = strlen(name);
	return (size_t)(key.end - key.start) == n && memcmp(key.start, name, n) == 0;
}

/* The top-level members this program reads; a second one of a name is refused. */
struct process_members {
	struct span user, capabilities;
};

static int remember(struct span *slot, struct span value) {
	if (slot->start != NULL) return -1;
	*slot = value;
	return 0;
}

static int process_member(struct span key, struct span value, void *ctx) {
	struct process_members *m = ctx;
	if (key_is(key, "user")) return remember(&m->user, value);
	if (key_is(key, "capabilities")) return remember(&m->capabilities, value);
	return 0;
}

static int user_member(struct span key, struct span value, void *ctx) {
	return key_is(key, "uid") ? remember(ctx, value) : 0;
}

/* uid 0 or absent: 1; another number: 0; anything else: -1 (not handled). */
static int user_is_root(struct span user) {
	struct span uid = {NULL, NULL};
	if (user.start == NULL) return 1;
	if (*user.start != '{' || each_member(user.start, user.end, user_member, &uid) == NULL) return -1;
	if (uid.start == NULL) return 1;
	for (const char *p = uid.start; p < uid.end; p++)
		if (*p < '0' || *p > '9') return -1;
	for (const char *p = uid.start; p < uid.end; p++)
		if (*p != '0') return 0;
	return 1;
}

/* The output, grown as needed. */
struct buffer {
	char *data;
	size_t len, cap;
	int failed;
};

static void put(struct buffer *b, const char *s, size_t n) {
	if (b->failed) return;
	if (b->len + n > b->cap) {
		size_t cap = (b->len + n) * 2;
		char *data = realloc(b->data, cap);
		if (data == NULL) {
			b->failed = 1;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void puts_buf(struct buffer *b, const char *s) {
	put(b, s, strlen(s));
}

/* The capabilities object being rebuilt: the caller's members but the granted ones. */
struct capabilities_copy {
	struct buffer *out;
	int root;
	int members;
};

static int granted_key(struct span key, int root) {
	return key_is(key, "bounding") || (root && (key_is(key, "effective") || key_is(key, "permitted")));
}

static int copy_member(struct span key, struct span value, void *ctx) {
	struct capabilities_copy *c = ctx;
	if (granted_key(key, c->root)) return 0;
	if (c->members++ > 0) puts_buf(c->out, ",");
	put(c->out, key.start - 1, (size_t)(key.end - key.start) + 2);
	puts_buf(c->out, ":");
	put(c->out, value.start, (size_t)(value.end - value.start));
	return 0;
}

static void put_list(struct buffer *out, const char *name, uint64_t mask) {
	puts_buf(out, "\"");
	puts_buf(out, name);
	puts_buf(out, "\":[");
	int n = 0;
	for (int bit = 0; bit < CAPABILITY_COUNT; bit++) {
		if (!(mask >> bit & 1)) continue;
		if (n++ > 0) puts_buf(out, ",");
		puts_buf(out, "\"");
		puts_buf(out, CAPABILITY_NAMES[bit]);
		puts_buf(out, "\"");
	}
	puts_buf(out, "]");
}

/* The new capabilities object; 0, or -1 if the caller's is not an object. */
static int put_capabilities(struct buffer *out, struct span caller, int root, uint64_t mask) {
	struct capabilities_copy copy = {out, root, 0};
	puts_buf(out, "{");
	if (caller.start != NULL && each_member(caller.start, caller.end, copy_member, &copy) == NULL) return -1;
	static const char *const granted[] = {"bounding", "effective", "permitted"};
	for (int i = 0; i < (root ? 3 : 1); i++) {
		if (copy.members++ > 0) puts_buf(out, ",");
		put_list(out, granted[i], mask);
	}
	puts_buf(out, "}");
	return 0;
}

/* CapBnd of the process that becomes runc; -1 if unreadable. */
static int bounding_set(uint64_t *mask) {
	const char *pid = getenv("SYSRUNC_CALLER_PID");
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%s/status", pid != NULL && *pid != '\0' && strspn(pid, "0123456789") == strlen(pid) ? pid : "self");
	FILE *f = fopen(path, "re");
	if (f == NULL) return -1;
	int found = 0;
	while (!found && fgets(line, sizeof line, f) != NULL) {
		char *hex_end;
		if (strncmp(line, "CapBnd:", 7) != 0) continue;
		errno = 0;
		*mask = strtoull(line + 7, &hex_end, 16);
		found = errno == 0 && hex_end != line + 7;
	}
	fclose(f);
	return found ? 0 : -1;
}

static char *read_file(const char *path, size_t *len) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return NULL;
	char *text = malloc(MAX_FILE + 1);
	size_t n = 0;
	ssize_t got = 1;
	while (text != NULL && n <= MAX_FILE && (got = read(fd, text + n, MAX_FILE + 1 - n)) > 0) n += (size_t)got;
	close(fd);
	if (text == NULL || got < 0 || n > MAX_FILE) {
		free(text);
		return NULL;
	}
	*len = n;
	return text;
}

/* Written beside the file under a name of this process's own, then renamed over it (as writeFileAtomic). */
static int replace_file(const char *path, const struct buffer *out) {
	char tmp[4096];
	const char *slash = strrchr(path, '/');
	int dir_len = slash == NULL ? 0 : (int)(slash - path) + 1;
	const char *base = slash == NULL ? path : slash + 1;
	if (snprintf(tmp, sizeof tmp, "%.*s.%.200s#%d.grant.tmp", dir_len, path, base, (int)getpid()) >= (int)sizeof tmp) return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) return -1;
	size_t done = 0;
	while (done < out->len) {
		ssize_t n = write(fd, out->data + done, out->len - done);
		if (n <= 0) break;
		done += (size_t)n;
	}
	if (fchmod(fd, 0600) != 0 || close(fd) != 0 || done != out->len || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int exec_grant(const char *process_file) {
	size_t len;
	uint64_t mask;
	char *text = read_file(process_file, &len);
	if (text == NULL || bounding_set(&mask) != 0) return NOT_HANDLED;
	const char *end = text + len;
	struct process_members members = {{NULL, NULL}, {NULL, NULL}};
	const char *object = skip_ws(text, end);
	const char *object_end = each_member(object, end, process_member, &members);
	if (object_end == NULL || skip_ws(object_end, end) != end) return NOT_HANDLED;
	int root = user_is_root(members.user);
	if (root < 0 || (members.capabilities.start != NULL && *members.capabilities.start != '{')) return NOT_HANDLED;

	struct buffer out = {NULL, 0, 0, 0};
	if (members.capabilities.start != NULL) {
		put(&out, text, (size_t)(members.capabilities.start - text));
		if (put_capabilities(&out, members.capabilities, root, mask) != 0) return NOT_HANDLED;
		put(&out, members.capabilities.end, (size_t)(end - members.capabilities.end));
	} else {
		/* A new last member, before the object's closing brace. */
		const char *close = object_end - 1;
		put(&out, text, (size_t)(close - text));
		const char *last = close - 1;
		while (last > object && (*last == ' ' || *last == '\t' || *last == '\n' || *last == '\r')) last--;
		puts_buf(&out, last == object ? "\"capabilities\":" : ",\"capabilities\":");
		put_capabilities(&out, (struct span){NULL, NULL}, root, mask);
		put(&out, close, (size_t)(end - close));
	}
	if (out.failed || replace_file(process_file, &out) != 0) return NOT_HANDLED;
	return 0;
}
