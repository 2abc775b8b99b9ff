/*
 * What sysrunc's OCI hooks (adopt-netns.c, delegate-cgroups.c) share: one error line and exit 1,
 * and the container's pid from the state runc writes on their stdin.
 */
#ifndef SYSRUNC_HOOK_COMMON_H
#define SYSRUNC_HOOK_COMMON_H

#include <sys/types.h>

/* The hook's name, the prefix of its error line: each hook defines it. */
extern const char *const hook_name;

/* "<hook_name>: <message>" on stderr, then exit 1. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* The whole of what is left to read from `fd`, NUL-terminated; NULL with errno set. */
char *read_all(int fd);

/* The container's pid: the first "pid": of the one JSON line runc writes on stdin (it precedes the annotations). */
pid_t state_pid(void);

#endif
