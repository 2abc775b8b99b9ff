/*
 * sysrunc-depot-init: PID 1 of a depot container. It starts nothing, so the container lives until it
 * is destroyed, whatever its user processes (all started with `runc exec`) do. It reaps every orphan
 * the kernel hands it, so no zombie stays in the container.
 *
 * Exits 0 on SIGTERM or SIGINT sent from outside the container only (si_pid 0: the sender is in an
 * ancestor pid namespace, e.g. `runc kill <id> TERM`), so a process inside cannot stop its own
 * container by signalling PID 1. Every other signal is ignored. Static (cc -static), no libc state.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	sigset_t all;
	siginfo_t info;
	int fd;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	/* runc's stdio would otherwise stay open here for the container's whole life. */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2) close(fd);
	}
	for (;;) {
		if (sigwaitinfo(&all, &info) < 0) continue;
		if ((info.si_signo == SIGTERM || info.si_signo == SIGINT) && info.si_pid == 0) return 0;
		if (info.si_signo != SIGCHLD) continue;
		for (;;) {
			pid_t reaped = waitpid(-1, NULL, WNOHANG);
			if (reaped > 0 || (reaped < 0 && errno == EINTR)) continue;
			break;
		}
	}
}
