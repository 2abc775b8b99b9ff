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
 * bin/sysrunc's create and run: prepare_call_hand_over (prepare-hand-over.c), in this process.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "manager-call.h"
#include "prepare-hand-over.h"

int main(int argc, char **argv) {
	if (argc >= 5 && strcmp(argv[1], "--hand-over") == 0) return prepare_call_hand_over(argv[2], argv[3], argv[4], argc - 5, argv + 5);
	if (argc < 2) {
		fputs("usage: sysrunc-prepare-call <manager-socket> [runc argv...]\n", stderr);
		return 2;
	}
	char caller[64];
	snprintf(caller, sizeof caller, ",\"callerPid\":%ld", prepare_caller_pid());
	const char *lost;
	int status = manager_call(argv[1], "prepareCall", argc - 2, argv + 2, caller, 1, &lost);
	if (status == LOST) write_all(1, lost, strlen(lost), "stdout");
	if (status != 0) return status;
	fault_point("create:answered");
	return carry_out();
}
