/*
 * create and run in the process that becomes runc (prepare-hand-over.c): shared by
 * dist/sysrunc-prepare-call --hand-over and the C launcher, dist/sysrunc.
 */
#ifndef SYSRUNC_PREPARE_HAND_OVER_H
#define SYSRUNC_PREPARE_HAND_OVER_H

/* The pid that becomes runc: $SYSRUNC_CALLER_PID, else the parent's. */
long prepare_caller_pid(void);

/*
 * Asks the manager to prepare the call and execs <runtime> as it answers; or exits with a refused
 * call's status, or execs <launcher> (bin/sysrunc) with SYSRUNC_HAND_BACK. Returns only on a failure,
 * reported, with the status to exit with.
 */
int prepare_call_hand_over(const char *launcher, const char *runtime, const char *socket_path, int argc, char **argv);

#endif
