/*
 * prepare_call_hand_over: create and run in the process that becomes runc, shared by
 * dist/sysrunc-prepare-call --hand-over (prepare-call.c, exec'd by bin/sysrunc) and the C launcher
 * (launcher.c, dist/sysrunc).
 *
 * prepareCall's request (prepare-call.c), from the launcher's own process (no fork: the pid stays
 * the one that becomes runc). The manager, told so (handOver), also answers how runc is to run; this
 * then carries out the messages, enters runc's mount namespace as sysrunc-bundle-exec does
 * (bundle-ns.c) and execs <runtime> with runc's argv as the manager made it from the call's own
 * (src/runtime-call/runc-argv.ts): no second grammar here or in bin/sysrunc. A failed call exits
 * with its status. Anything else is handed back to bin/sysrunc by exec'ing <launcher> again with
 * the same argv and SYSRUNC_HAND_BACK=<pid>:<what>: "unanswered" (what sysrunc-prepare-call's exit 3 means; a
 * request lost with its manager also sets SYSRUNC_PREPARE_LOST, as its exit 4 prints it), or
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
#include "prepare-hand-over.h"

/* The pid that becomes runc, as src/runtime-call/caller.ts reads it. */
long prepare_caller_pid(void) {
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

int prepare_call_hand_over(const char *launcher, const char *runtime, const char *socket_path, int argc, char **argv) {
	char params[96];
	snprintf(params, sizeof params, ",\"callerPid\":%ld,\"handOver\":true", prepare_caller_pid());
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
