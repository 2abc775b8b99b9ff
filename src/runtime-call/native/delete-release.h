/*
 * The synchronous delete's release (delete-release.c): shared by dist/sysrunc-delete-call (bin/sysrunc
 * runs it after runc's delete) and the C launcher, dist/sysrunc.
 */
#ifndef SYSRUNC_DELETE_RELEASE_H
#define SYSRUNC_DELETE_RELEASE_H

/*
 * One deleteCall request with runc's argv and exit status, its answer carried out: the answered
 * exit status, or NOT_ANSWERED (manager-call.h) having written nothing.
 */
int delete_release(const char *socket_path, long runc_status, int argc, char **argv);

#endif
