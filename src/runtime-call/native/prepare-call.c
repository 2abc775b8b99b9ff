/*
 * sysrunc-prepare-call <manager-socket> [runc argv...]
 *
 * The create/run path without a JavaScript runtime: bin/sysrunc runs this instead of the per-call
 * binary (dist/sysrunc-call) for `create` and `run`. It knows nothing of runc's flags (their one
 * grammar is src/oci/): it sends its argv, its working directory and the pid that becomes runc
 * ($SYSRUNC_CALLER_PID, else its parent) to the manager in one prepareCall request
 * (src/manager-api/v1.ts; one JSON line each way, src/rpc/; the client is manager-call.c, shared
 * with sysrunc-delete-call), and carries out the answer: the
 * messages the manager formatted in the call's --log-format, each appended to the log file it
 * names or written to stderr, then the lines for bin/sysrunc on stdout, and the exit status.
 *
 * Exit 3, having written nothing: no answer to carry out (no manager listening, one that died
 * with the request or answered something else, an argv that is not UTF-8...). bin/sysrunc then
 * asks the per-call binary, which waits for a restarting manager, resends an idempotent prepare
 * and words every such error as it always has, in the call's log format.
 * Exit 4: the manager died with the request (the connection ended unanswered: EOF, ECONNRESET or
 * EPIPE, printed on stdout): the per-call binary sends it again to the next manager, or, told not
 * to wait (SYSRUNC_MGR_WAIT_MS=0), reports it as it reports its own request's loss.
 *
 * sysrunc-prepare-call --hand-over <launcher> <runtime> <manager-socket> [runc argv...]
 *
 * The same request, from bin/sysrunc's own process (it execs this: no fork, and the pid stays the
 * one that becomes runc). The manager, told so (handOver), also answers how runc is to run; this
 * then carries out the messages, enters runc's mount namespace as sysrunc-bundle-exec does
 * (bundle-ns.c) and execs <runtime> with runc's argv as the manager made it from the call's own
 * (src/runtime-call/runc-argv.ts): no second grammar here or in bin/sysrunc. A failed call exits
 * with its status. Anything else is handed back to bin/sysrunc by exec'ing <launcher> again with
 * the same argv and SYSRUNC_HAND_BACK=<pid>:<what>: "unanswered" (what exit 3 means above; a
 * request lost with its manager also sets SYSRUNC_PREPARE_LOST, as exit 4 prints it), or
 * "prepared" with the lines in SYSRUNC_PREPARED (a foreground run whose cleanup is waited for,
 * which runs under the per-call binary).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle-ns.h"
#include "manager-call.h"

/* The pid that becomes runc, as src/runtime-call/caller.ts reads it. */
static long caller_pid(void) {
	const char *env = getenv("SYSRUNC_CALLER_PID");
	char *end;
	errno = 0;
	long pid = env == NULL ? 0 : strtol(env, &end, 10);
	if (env == NULL || errno != 0 || end == env || *end != '\0' || pid <= 0 || pid > INT_MAX) return getppid();
	return pid;
}

/* bin/sysrunc again, same argv, told what came of the request (see the top). */
static int hand_back(const char *launcher, const char *what, int argc, char **argv) {
	char mark[64];
	snprintf(mark, sizeof mark, "%d:%s", (int)getpid(), what);
	char **args = calloc((size_t)argc + 2, sizeof *args);
	if (args == NULL || setenv("SYSRUNC_HAND_BACK", mark, 1) != 0) return bundle_ns_fail("hand back to", launcher);
	args[0] = (char *)launcher;
	memcpy(args + 1, argv, (size_t)argc * sizeof *argv);
	execv(launcher, args);
	return bundle_ns_fail("exec", launcher);
}

static int hand_over(const char *launcher, const char *runtime, const char *socket_path, int argc, char **argv) {
	char params[96];
	snprintf(params, sizeof params, ",\"callerPid\":%ld,\"handOver\":true", caller_pid());
	const char *lost;
	int status = manager_call(socket_path, "prepareCall", argc, argv, params, 1, &lost);
	if (status == LOST && setenv("SYSRUNC_PREPARE_LOST", lost, 1) != 0) return bundle_ns_fail("hand back to", launcher);
	if (status != 0) return hand_back(launcher, "unanswered", argc, argv);
	fault_point("create:answered");
	if (answer_exit_code() != 0) return carry_out();
	static char *runc_argv[MANAGER_CALL_MAX_ARGS + 2];
	struct runc_hand_over runc = {.argv = runc_argv + 1};
	int has_runc = answer_runc(&runc);
	carry_out_writes();
	if (!has_runc) {
		if (setenv("SYSRUNC_PREPARED", answer_stdout(), 1) != 0) return bundle_ns_fail("hand back to", launcher);
		return hand_back(launcher, "prepared", argc, argv);
	}
	fault_point("create:before-runc");
	status = enter_bundle_namespace(runc.prepared_config, runc.caller_bundle);
	if (status != 0) return status;
	runc_argv[0] = (char *)runtime;
	runc_argv[runc.argc + 1] = NULL;
	execvp(runtime, runc_argv);
	return bundle_ns_fail("exec", runtime);
}

int main(int argc, char **argv) {
	if (argc >= 5 && strcmp(argv[1], "--hand-over") == 0) return hand_over(argv[2], argv[3], argv[4], argc - 5, argv + 5);
	if (argc < 2) {
		fputs("usage: sysrunc-prepare-call <manager-socket> [runc argv...]\n", stderr);
		return 2;
	}
	char caller[64];
	snprintf(caller, sizeof caller, ",\"callerPid\":%ld", caller_pid());
	const char *lost;
	int status = manager_call(argv[1], "prepareCall", argc - 2, argv + 2, caller, 1, &lost);
	if (status == LOST) write_all(1, lost, strlen(lost), "stdout");
	if (status != 0) return status;
	fault_point("create:answered");
	return carry_out();
}
