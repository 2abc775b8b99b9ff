/*
 * The capability grant for `exec` into a system container (exec-grant.c): shared by
 * dist/sysrunc-exec-grant (exec-grant-main.c) and the C launcher (launcher.c).
 */
#ifndef SYSRUNC_EXEC_GRANT_H
#define SYSRUNC_EXEC_GRANT_H

/* What exec_grant returns having written nothing (the per-call binary decides instead). */
enum { EXEC_GRANT_NOT_HANDLED = 3 };

/* Rewrites the --process file with the granted capabilities: 0, or EXEC_GRANT_NOT_HANDLED. */
int exec_grant(const char *process_file);

#endif
