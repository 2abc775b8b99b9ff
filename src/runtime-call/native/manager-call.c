/*
 * The C clients' one request to the manager and how its answer is carried out (manager-call.h;
 * the JSON is json.c's).
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

#include "json.h"
#include "manager-call.h"

/* The manager's API version (src/manager-api/version.ts). */
#define API_VERSION "1"
enum { MAX_REPLY = 16 << 20, MAX_WRITES = 1024, MAX_ARGS = MANAGER_CALL_MAX_ARGS };
/* As the per-call binary's call timeout (src/manager-client/call.ts). */
static const int CALL_TIMEOUT_MS = 120000;

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

static int runc_arg(struct cursor *c, void *ctx) {
	struct answer *a = ctx;
	return a->runc_argc < MAX_ARGS && c_string(c, &a->runc_args[a->runc_argc++]);
}

static int runc_member(struct cursor *c, const char *key, void *ctx) {
	struct answer *a = ctx;
	if (strcmp(key, "preparedConfig") == 0) return c_string(c, &a->prepared_config);
	if (strcmp(key, "callerBundle") == 0) return c_string(c, &a->caller_bundle);
	return strcmp(key, "argv") == 0 ? array(c, runc_arg, a) : skip_value(c, 0);
}

static int message_member(struct cursor *c, const char *key, void *ctx) {
	struct message *m = ctx;
	if (strcmp(key, "text") == 0) return string(c, &m->text);
	if (strcmp(key, "file") == 0) return (m->has_file = 1) && string(c, &m->file);
	return skip_value(c, 0);
}

static int write_element(struct cursor *c, void *ctx) {
	struct answer *a = ctx;
	if (a->write_count == MAX_WRITES) return 0;
	struct message *m = &a->writes[a->write_count++];
	return object(c, message_member, m) && m->text.data != NULL;
}

static int result_member(struct cursor *c, const char *key, void *ctx) {
	struct answer *a = ctx;
	if (strcmp(key, "exitCode") == 0) return (a->has_exit = 1) && integer(c, &a->exit_code);
	if (strcmp(key, "stdout") == 0) return (a->has_stdout = 1) && string(c, &a->stdout_text);
	if (strcmp(key, "runc") == 0) return (a->has_runc = 1) && object(c, runc_member, a) && a->prepared_config.data != NULL && a->caller_bundle.data != NULL;
	return strcmp(key, "writes") == 0 ? array(c, write_element, a) : skip_value(c, 0);
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
