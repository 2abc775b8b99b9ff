/*
 * delete_release: the synchronous delete's request to the manager after runc's delete (see
 * delete-call.c), shared by dist/sysrunc-delete-call and the C launcher (launcher.c).
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "delete-release.h"
#include "manager-call.h"

int delete_release(const char *socket_path, long runc_status, int argc, char **argv) {
	if (runc_status < 0 || runc_status > 255) return NOT_ANSWERED;
	char status_member[32];
	snprintf(status_member, sizeof status_member, ",\"runcStatus\":%ld", runc_status);
	const char *lost;
	/* A request lost with a dying manager is resent by the per-call binary (release is idempotent). */
	if (manager_call(socket_path, "deleteCall", argc, argv, status_member, 0, &lost) != 0) return NOT_ANSWERED;
	return carry_out();
}
