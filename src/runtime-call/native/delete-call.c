/*
 * sysrunc-delete-call <manager-socket> <runc's exit status> [runc argv...]
 *
 * The synchronous delete without a JavaScript runtime: bin/sysrunc runs runc's delete, then this
 * (instead of the per-call binary, dist/sysrunc-call) for a container whose manager hint asks that
 * its cleanup be waited for. It knows nothing of runc's flags (their one grammar is src/oci/): it
 * sends its argv, its working directory and runc's exit status to the manager in one deleteCall
 * request (src/manager-api/v1.ts; the client is manager-call.c, shared with sysrunc-prepare-call;
 * the request is delete-release.c, shared with the C launcher).
 * The manager parses argv, releases the container if runc no longer has it, and answers with the
 * messages to write (a failed release is a warning in the call's --log-format) and the exit status
 * (runc's). This carries them out and exits with that status.
 *
 * Exit 3, having written nothing: no answer (no manager listening, one that died with the request
 * or answered something else, an argv that is not UTF-8, a bad status argument...). bin/sysrunc
 * then asks the per-call binary, which waits for a restarting manager, resends the idempotent
 * release and words every such error as it always has.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "delete-release.h"
#include "manager-call.h"

int main(int argc, char **argv) {
	if (argc < 3) {
		fputs("usage: sysrunc-delete-call <manager-socket> <runc's exit status> [runc argv...]\n", stderr);
		return 2;
	}
	char *end;
	long status = strtol(argv[2], &end, 10);
	if (end == argv[2] || *end != '\0') return NOT_ANSWERED;
	return delete_release(argv[1], status, argc - 3, argv + 3);
}
