/*
 * One request of a C client to the manager (src/manager-api/v1.ts; one JSON line each way, src/rpc/),
 * shared by dist/sysrunc-prepare-call (create, run) and dist/sysrunc-delete-call (the synchronous
 * delete). Neither knows runc's flags (their one grammar is src/oci/): the request carries the
 * call's argv and working directory, the manager parses them and answers with the messages it
 * formatted in the call's --log-format (each appended to the log file it names, or written to
 * stderr), what to print on stdout, and the exit status.
 */
#ifndef SYSRUNC_MANAGER_CALL_H
#define SYSRUNC_MANAGER_CALL_H

#include <stddef.h>

/* Exit statuses of a client that carried out no answer (see the clients' own comments). */
enum { NOT_ANSWERED = 3, LOST = 4 };

/*
 * Sends {"method": method, "params": {"argv": [...], "cwd": <cwd><extra_params>}} to the manager
 * at socket_path; extra_params is JSON members, each starting with a comma ("" for none). On an
 * answer in the API's shape (a result with exitCode 0-255 other than 3 and 4, writes and, if
 * needs_stdout, stdout) returns 0 and keeps it for carry_out(). Otherwise NOT_ANSWERED, having
 * written nothing (no manager, an error answer, an argv that is not UTF-8...), or LOST: the
 * connection ended after the request went out (*lost: EOF, ECONNRESET or EPIPE).
 */
int manager_call(const char *socket_path, const char *method, int argc, char **argv, const char *extra_params, int needs_stdout, const char **lost);

/* Carries out the kept answer: its writes in order, then its stdout; returns its exit status. */
int carry_out(void);

/* The kept answer's writes only, in order. */
void carry_out_writes(void);

int answer_exit_code(void);

/* The kept answer's stdout ("" without one). */
const char *answer_stdout(void);

/* prepareCall's `runc` (asked for with handOver): how to exec runc. */
struct runc_hand_over {
	/* runc's argv after its name (argc entries; room for argc + 2 pointers). */
	char **argv;
	int argc;
	const char *prepared_config, *caller_bundle;
};

/* 1 and *out filled (out->argv pointing at room for as many pointers as the answer has args) if the answer has `runc`. */
int answer_runc(struct runc_hand_over *out);

/* How many args the answer's `runc` holds at most. */
#define MANAGER_CALL_MAX_ARGS 8192

/* SYSRUNC_TEST_FAULT (src/testing/fault.ts) naming the point: SIGKILL here, as kill -9 from outside would. */
void fault_point(const char *name);

/* All of s to fd; what names it in the error that ends the process (NULL: a failed write is ignored). */
void write_all(int fd, const char *s, size_t n, const char *what);

#endif
