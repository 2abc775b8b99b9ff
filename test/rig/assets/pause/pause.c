/*
 * A pod sandbox's process for the test rigs, built static into an image of this one file (as
 * Kubernetes' pause image is): it waits for a signal, reaps what ends up as its child, and exits
 * 0 on SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
	(void)sig;
	_exit(0);
}

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

int main(void) {
	struct sigaction stop = {.sa_handler = quit}, child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
	if (sigaction(SIGINT, &stop, NULL) != 0 || sigaction(SIGTERM, &stop, NULL) != 0 || sigaction(SIGCHLD, &child, NULL) != 0) return 1;
	for (;;) pause();
}
