/*
 * sysrunc-exec-grant <process-file>
 *
 * bin/sysrunc's capability grant for `exec` (exec-grant.c says what it writes). Exit 0: the file
 * was rewritten; any other status: nothing was written, and bin/sysrunc asks the per-call binary.
 */
#include <stdio.h>

#include "exec-grant.h"

int main(int argc, char **argv) {
	if (argc != 2) {
		fputs("usage: sysrunc-exec-grant <process-file>\n", stderr);
		return EXEC_GRANT_NOT_HANDLED;
	}
	return exec_grant(argv[1]);
}
