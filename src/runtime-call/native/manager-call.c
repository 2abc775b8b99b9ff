/*
 * The C clients' one request to the manager and how its answer is carried out (manager-call.h).
 * Strict in what it takes: an answer not in the API's shape is no answer (NOT_ANSWERED), and the
 * client's caller (bin/sysrunc) then asks the per-call binary, which words every error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "manager-call.h"

/* The manager's API version (src/manager-api/version.ts). */
#define API_VERSION "1"
enum { MAX_REPLY = 16 << 20, MAX_WRITES = 1024, MAX_DEPTH = 32, MAX_ARGS = MANAGER_CALL_MAX_ARGS };
/* As the per-call binary's call timeout (src/manager-client/call.ts). */
static const int CALL_TIMEOUT_MS = 120000;

struct buf {
	char *data;
	size_t len, cap;
};

static int put(struct buf *b, const char *s, size_t n) {
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + n + 1) cap *= 2;
		char *data = realloc(b->data, cap);
		if (data == NULL) return -1;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static int put_str(struct buf *b, const char *s) { return put(b, s, strlen(s)); }

/* A JSON string of s, which is valid UTF-8: only '"', '\' and control characters escaped. */
static int put_json_string(struct buf *b, const char *s) {
	if (put(b, "\"", 1) != 0) return -1;
	for (; *s != '\0'; s++) {
		char esc[8];
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c;
			if (put(b, esc, 2) != 0) return -1;
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			if (put(b, esc, 6) != 0) return -1;
		} else if (put(b, (const char *)&c, 1) != 0) {
			return -1;
		}
	}
	return put(b, "\"", 1);
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): what the manager reads unchanged. */
static int valid_utf8(const unsigned char *s) {
	while (*s != '\0') {
		unsigned c = *s++, n, min, cp;
		if (c < 0x80) continue;
		if ((c & 0xe0) == 0xc0) n = 1, min = 0x80, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0) n = 2, min = 0x800, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0) n = 3, min = 0x10000, cp = c & 0x07;
		else return 0;
		for (; n > 0; n--, s++) {
			if ((*s & 0xc0) != 0x80) return 0;
			cp = (cp << 6) | (*s & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	}
	return 1;
}

static int request(struct buf *b, const char *method, int argc, char **argv, const char *extra_params) {
	char *cwd = getcwd(NULL, 0);
	int ok = cwd != NULL && valid_utf8((unsigned char *)cwd);
	ok = ok && put_str(b, "{\"v\":" API_VERSION ",\"seq\":1,\"method\":") == 0 && put_json_string(b, method) == 0 && put_str(b, ",\"params\":{\"argv\":[") == 0;
	for (int i = 0; ok && i < argc; i++) {
		ok = valid_utf8((unsigned char *)argv[i]) && (i == 0 || put(b, ",", 1) == 0) && put_json_string(b, argv[i]) == 0;
	}
	ok = ok && put_str(b, "],\"cwd\":") == 0 && put_json_string(b, cwd) == 0 && put_str(b, extra_params) == 0 && put_str(b, "}}\n") == 0;
	free(cwd);
	return ok ? 0 : -1;
}

static long now_ms(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* The connection ended after the request went out: how (see exit 4 above). */
static const char *lost;

static int ended(int err) {
	if (err == 0) lost = "EOF";
	else if (err == ECONNRESET) lost = "ECONNRESET";
	else if (err == EPIPE) lost = "EPIPE";
	return -1;
}

/* Sends the request and reads the first line of the answer (without its newline); -1: no answer (`lost` says if it died with the request). */
static int exchange(const char *socket_path, const struct buf *req, struct buf *reply) {
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof addr.sun_path) return -1;
	strcpy(addr.sun_path, socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -1;
	int rc = -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) goto out;
	for (size_t sent = 0; sent < req->len;) {
		ssize_t n = send(fd, req->data + sent, req->len - sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			rc = ended(n == 0 ? EPIPE : errno);
			goto out;
		}
		sent += (size_t)n;
	}
	long deadline = now_ms() + CALL_TIMEOUT_MS;
	for (;;) {
		char chunk[65536];
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long left = deadline - now_ms();
		if (left <= 0) goto out;
		int ready = poll(&p, 1, (int)left);
		if (ready < 0 && errno == EINTR) continue;
		if (ready <= 0) goto out;
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			rc = ended(n == 0 ? 0 : errno);
			goto out;
		}
		char *newline = memchr(chunk, '\n', (size_t)n);
		if (put(reply, chunk, newline == NULL ? (size_t)n : (size_t)(newline - chunk)) != 0) goto out;
		if (newline != NULL) {
			rc = 0;
			break;
		}
		if (reply->len > MAX_REPLY) goto out;
	}
out:
	close(fd);
	return rc;
}

/* The answer's JSON, read with a cursor: only what the result holds (exitCode, writes, stdout) is kept. */
struct cursor {
	const char *p, *end;
};

static void ws(struct cursor *c) {
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int eat(struct cursor *c, char ch) {
	ws(c);
	if (c->p >= c->end || *c->p != ch) return 0;
	c->p++;
	return 1;
}

static int hex4(struct cursor *c, unsigned *out) {
	*out = 0;
	for (int i = 0; i < 4; i++, c->p++) {
		if (c->p >= c->end) return 0;
		char h = *c->p;
		unsigned d = h >= '0' && h <= '9' ? (unsigned)(h - '0') : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10) : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10) : 16;
		if (d == 16) return 0;
		*out = *out << 4 | d;
	}
	return 1;
}

static int put_utf8(struct buf *b, unsigned cp) {
	char u[4];
	size_t n;
	if (cp < 0x80) u[0] = (char)cp, n = 1;
	else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	else if (cp < 0x10000) u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	else u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)), u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	return put(b, u, n);
}

/* A JSON string, decoded into out (NULL: skipped). A lone surrogate becomes U+FFFD, as Node writes it. */
static int string(struct cursor *c, struct buf *out) {
	struct buf skip = {0};
	if (out == NULL) out = &skip;
	int ok = eat(c, '"');
	while (ok) {
		if (c->p >= c->end || (unsigned char)*c->p < 0x20) ok = 0;
		else if (*c->p == '"') break;
		else if (*c->p != '\\') ok = put(out, c->p++, 1) == 0;
		else if (++c->p >= c->end) ok = 0;
		else if (*c->p != 'u') {
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = strchr(from, *c->p);
			ok = *c->p != '\0' && at != NULL && put(out, to + (at - from), 1) == 0;
			c->p++;
		} else {
			unsigned cp, low;
			c->p++;
			ok = hex4(c, &cp);
			if (ok && cp >= 0xd800 && cp < 0xdc00 && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
				struct cursor peek = {c->p + 2, c->end};
				if (hex4(&peek, &low) && low >= 0xdc00 && low < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00), c->p = peek.p;
			}
			if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
			ok = ok && put_utf8(out, cp) == 0;
		}
	}
	free(skip.data);
	if (ok && out->data == NULL) ok = put(out, "", 0) == 0;
	return ok && eat(c, '"');
}

static int integer(struct cursor *c, long *out) {
	ws(c);
	char *end;
	errno = 0;
	*out = strtol(c->p, &end, 10);
	if (end == c->p || end > c->end || errno != 0) return 0;
	c->p = end;
	return 1;
}

static int skip_value(struct cursor *c, int depth) {
	ws(c);
	if (c->p >= c->end || depth > MAX_DEPTH) return 0;
	char open = *c->p;
	if (open == '"') return string(c, NULL);
	if (open != '{' && open != '[') {
		/* A number, true, false or null: up to the next delimiter. */
		const char *start = c->p;
		while (c->p < c->end && strchr(",]} \t\r\n", *c->p) == NULL) c->p++;
		return c->p > start;
	}
	c->p++;
	if (eat(c, open == '{' ? '}' : ']')) return 1;
	do {
		if (open == '{' && !(string(c, NULL) && eat(c, ':'))) return 0;
		if (!skip_value(c, depth + 1)) return 0;
	} while (eat(c, ','));
	return eat(c, open == '{' ? '}' : ']');
}

/* Calls member() for each member of an object at the cursor; 0 if malformed. */
static int object(struct cursor *c, int (*member)(struct cursor *, const char *, void *), void *ctx) {
	if (!eat(c, '{')) return 0;
	if (eat(c, '}')) return 1;
	do {
		struct buf key = {0};
		int ok = string(c, &key) && eat(c, ':') && member(c, key.data, ctx);
		free(key.data);
		if (!ok) return 0;
	} while (eat(c, ','));
	return eat(c, '}');
}

struct message {
	struct buf text, file;
	int has_file;
};

struct answer {
	int has_result, has_exit, has_stdout, has_runc;
	long exit_code;
	struct buf stdout_text;
	struct message writes[MAX_WRITES];
	int write_count;
	/* prepareCall's `runc` (handOver): runc's argv, the prepared config, the caller's bundle. */
	struct buf runc_args[MAX_ARGS], prepared_config, caller_bundle;
	int runc_argc;
};

/* A decoded string that is a C string too (no NUL inside). */
static int c_string(struct cursor *c, struct buf *out) {
	return string(c, out) && strlen(out->data) == out->len;
}

static int runc_member(struct cursor *c, const char *key, void *ctx) {
	struct answer *a = ctx;
	if (strcmp(key, "preparedConfig") == 0) return c_string(c, &a->prepared_config);
	if (strcmp(key, "callerBundle") == 0) return c_string(c, &a->caller_bundle);
	if (strcmp(key, "argv") != 0) return skip_value(c, 0);
	if (!eat(c, '[')) return 0;
	if (eat(c, ']')) return 1;
	do {
		if (a->runc_argc == MAX_ARGS) return 0;
		if (!c_string(c, &a->runc_args[a->runc_argc++])) return 0;
	} while (eat(c, ','));
	return eat(c, ']');
}

static int message_member(struct cursor *c, const char *key, void *ctx) {
	struct message *m = ctx;
	if (strcmp(key, "text") == 0) return string(c, &m->text);
	if (strcmp(key, "file") == 0) return (m->has_file = 1) && string(c, &m->file);
	return skip_value(c, 0);
}

static int result_member(struct cursor *c, const char *key, void *ctx) {
	struct answer *a = ctx;
	if (strcmp(key, "exitCode") == 0) return (a->has_exit = 1) && integer(c, &a->exit_code);
	if (strcmp(key, "stdout") == 0) return (a->has_stdout = 1) && string(c, &a->stdout_text);
	if (strcmp(key, "runc") == 0) return (a->has_runc = 1) && object(c, runc_member, a) && a->prepared_config.data != NULL && a->caller_bundle.data != NULL;
	if (strcmp(key, "writes") != 0) return skip_value(c, 0);
	if (!eat(c, '[')) return 0;
	if (eat(c, ']')) return 1;
	do {
		if (a->write_count == MAX_WRITES) return 0;
		struct message *m = &a->writes[a->write_count++];
		if (!object(c, message_member, m) || m->text.data == NULL) return 0;
	} while (eat(c, ','));
	return eat(c, ']');
}

static int reply_member(struct cursor *c, const char *key, void *ctx) {
	struct answer *a = ctx;
	/* An error answer (an older manager without the method, a refused peer) is no answer here. */
	if (strcmp(key, "result") == 0) return (a->has_result = 1) && object(c, result_member, a);
	return skip_value(c, 0);
}

void write_all(int fd, const char *s, size_t n, const char *what) {
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) {
			if (what == NULL) return;
			fprintf(stderr, "sysrunc: write %s: %s\n", what, strerror(errno));
			exit(1);
		}
		s += w, n -= (size_t)w;
	}
}

void fault_point(const char *name) {
	const char *spec = getenv("SYSRUNC_TEST_FAULT");
	size_t n = strlen(name);
	for (const char *p = spec; p != NULL && *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0')) {
			fprintf(stderr, "SYSRUNC_TEST_FAULT: killing pid %d at %s\n", (int)getpid(), name);
			kill(getpid(), SIGKILL);
		}
	}
}

static struct answer answer;

int manager_call(const char *socket_path, const char *method, int argc, char **argv, const char *extra_params, int needs_stdout, const char **how_lost) {
	struct buf req = {0}, reply = {0};
	*how_lost = NULL;
	if (request(&req, method, argc, argv, extra_params) != 0) return NOT_ANSWERED;
	if (exchange(socket_path, &req, &reply) != 0) {
		*how_lost = lost;
		return lost == NULL ? NOT_ANSWERED : LOST;
	}
	struct answer *a = &answer;
	struct cursor c = {reply.data, reply.data + reply.len};
	if (!object(&c, reply_member, a) || (ws(&c), c.p != c.end)) return NOT_ANSWERED;
	if (!a->has_result || !a->has_exit || (needs_stdout && !a->has_stdout)) return NOT_ANSWERED;
	if (a->exit_code < 0 || a->exit_code > 255 || a->exit_code == NOT_ANSWERED || a->exit_code == LOST) return NOT_ANSWERED;
	return 0;
}

void carry_out_writes(void) {
	const struct answer *a = &answer;
	for (int i = 0; i < a->write_count; i++) {
		const struct message *m = &a->writes[i];
		if (!m->has_file) {
			write_all(2, m->text.data, m->text.len, NULL);
			continue;
		}
		/* An unwritable log must not hide the message, which also goes to stderr (its next write). */
		int fd = open(m->file.data, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) continue;
		write_all(fd, m->text.data, m->text.len, NULL);
		close(fd);
	}
}

int carry_out(void) {
	const struct answer *a = &answer;
	carry_out_writes();
	if (a->has_stdout) write_all(1, a->stdout_text.data, a->stdout_text.len, "stdout");
	return (int)a->exit_code;
}

int answer_exit_code(void) { return (int)answer.exit_code; }

const char *answer_stdout(void) { return answer.has_stdout ? answer.stdout_text.data : ""; }

int answer_runc(struct runc_hand_over *out) {
	const struct answer *a = &answer;
	if (!a->has_runc) return 0;
	out->argc = a->runc_argc;
	for (int i = 0; i < a->runc_argc; i++) out->argv[i] = a->runc_args[i].data;
	out->prepared_config = a->prepared_config.data;
	out->caller_bundle = a->caller_bundle.data;
	return 1;
}
