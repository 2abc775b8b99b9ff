/*
 * sysrunc-depot-supervise: one per process started in a depot container. It outlives the depot
 * daemon: the process's stdio, its exit status and its pty live here, not in the daemon.
 *
 *   sysrunc-depot-supervise <process dir> tty|pipes <runtime> <args...>
 *
 * The runtime args are a detached exec (`sysrunc ... exec -d --pid-file <dir>/pid --process ...`,
 * plus `--console-socket console.sock` for a tty). The supervisor is a child subreaper, so the
 * process becomes its child when the runtime exits; it waits for it and writes its exit status.
 *
 * In <process dir> (its working directory):
 *   stdin, control   FIFOs it holds open for reading and writing, so clients can come and go.
 *                    control takes lines: "w <rows> <cols>" (TIOCSWINSZ), "k <signal>", "c" (close stdin)
 *   stdout, stderr   what the process wrote, appended (a tty has stdout only; stderr then
 *                    holds the runtime's own messages). Each file is rotated to <name>.1 when it
 *                    reaches a quarter of SYSRUNC_DEPOT_MAX_OUTPUT (bytes, default 10 MiB, read
 *                    from the environment): a process keeps at most that much output on disk, the
 *                    oldest dropped, so no process can fill /run.
 *   stdout.base, stderr.base   after a rotation: the stream offset of the file's first byte
 *                    (what a reader adds to an offset into the file; absent means 0)
 *   pid              the process's host pid (written by the runtime)
 *   supervisor.pid   its own pid
 *   exitcode         written last, atomically: the exit status, or 128+signal
 * fd 3, if open: the start-up report, "ok <pid>\n" or "error <message>\n", then closed.
 * Every failed syscall is reported on stderr (the daemon points it at supervisor.log) with the
 * operation, the path and errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* After the process exits, output is still read until every stream ends or stays quiet this long
 * (a background child inside may keep the pipe or the pty open forever). */
#define DRAIN_QUIET_MS 200
#define CONSOLE_TIMEOUT_MS 60000

static int report_fd = 3;

static void report(const char *fmt, ...) {
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(2, "sysrunc-depot-supervise[%d]: %s\n", getpid(), msg);
	if (report_fd >= 0) {
		dprintf(report_fd, "error %s\n", msg);
		close(report_fd);
		report_fd = -1;
	}
}

static void fail(const char *op, const char *path) {
	report("%s %s: %s (errno %d)", op, path, strerror(errno), errno);
	exit(1);
}

static long long now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const char *buf, size_t len) {
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int open_fifo(const char *path) {
	if (mkfifo(path, 0600) < 0 && errno != EEXIST) fail("mkfifo", path);
	/* Read and write: never EOF while no client has it open, never ENXIO for a client's open. */
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) fail("open", path);
	return fd;
}

static int open_output(const char *path) {
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) fail("open", path);
	return fd;
}

#include "output-files.h"

static void set_nonblocking(int fd, const char *what) {
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail("fcntl O_NONBLOCK", what);
}

/* Accepts the runtime's connection on console.sock and takes the pty master it sends (SCM_RIGHTS). */
static int receive_console(int listen_fd, pid_t runtime) {
	long long deadline = now_ms() + CONSOLE_TIMEOUT_MS;
	for (;;) {
		struct pollfd p = {.fd = listen_fd, .events = POLLIN};
		int ready = poll(&p, 1, 100);
		if (ready < 0 && errno != EINTR) fail("poll", "console.sock");
		if (ready > 0) break;
		int status;
		if (waitpid(runtime, &status, WNOHANG) == runtime) {
			report("the runtime exited (status %d) before sending the console to console.sock; see stderr", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
			exit(1);
		}
		if (now_ms() > deadline) {
			report("no console on console.sock within %d ms", CONSOLE_TIMEOUT_MS);
			exit(1);
		}
	}
	int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) fail("accept", "console.sock");
	char name[256];
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	ssize_t n;
	do n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) fail("recvmsg", "console.sock");
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
		report("recvmsg console.sock: no file descriptor in the message");
		exit(1);
	}
	int master;
	memcpy(&master, CMSG_DATA(c), sizeof master);
	close(conn);
	close(listen_fd);
	unlink("console.sock");
	return master;
}

static int listen_console(void) {
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, "console.sock"); /* relative: the process dir may be deeper than sun_path allows */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) fail("socket", "console.sock");
	unlink("console.sock");
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("bind", "console.sock");
	if (listen(fd, 1) < 0) fail("listen", "console.sock");
	return fd;
}

static pid_t read_pid(const char *path) {
	char buf[32] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) fail("open", path);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0) fail("read", path);
	close(fd);
	long pid = strtol(buf, NULL, 10);
	if (pid <= 0) {
		report("%s: no pid in \"%s\"", path, buf);
		exit(1);
	}
	return (pid_t)pid;
}

/* Copies what is readable now from fd to the output file; returns 0 at EOF (or EIO: a pty whose
 * slave side is closed), 1 otherwise. */
static int pump(int fd, struct output *out, const char *name) {
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			output_write(out, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && errno == EAGAIN) return 1;
		if (n < 0 && errno != EIO) dprintf(2, "sysrunc-depot-supervise: read %s: %s (errno %d)\n", name, strerror(errno), errno);
		return 0;
	}
}

static void write_exit_code(int code) {
	char text[16];
	int len = snprintf(text, sizeof text, "%d\n", code);
	int fd = open("exitcode.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) fail("open", "exitcode.tmp");
	if (write_all(fd, text, (size_t)len) < 0) fail("write", "exitcode.tmp");
	close(fd);
	if (rename("exitcode.tmp", "exitcode") < 0) fail("rename", "exitcode.tmp -> exitcode");
}

int main(int argc, char **argv) {
	if (argc < 4 || (strcmp(argv[2], "tty") != 0 && strcmp(argv[2], "pipes") != 0)) {
		dprintf(2, "usage: sysrunc-depot-supervise <process dir> tty|pipes <runtime> <args...>\n");
		return 2;
	}
	int tty = strcmp(argv[2], "tty") == 0;
	if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) < 0) report_fd = -1;
	if (chdir(argv[1]) < 0) fail("chdir", argv[1]);
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail("prctl PR_SET_CHILD_SUBREAPER", argv[1]);
	int self = open("supervisor.pid", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (self < 0 || dprintf(self, "%d\n", getpid()) < 0) fail("write", "supervisor.pid");
	close(self);

	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0) fail("signalfd", "SIGCHLD");

	int stdin_fifo = open_fifo("stdin");
	int control_fifo = open_fifo("control");
	read_max_output();
	struct output outputs[2];
	output_open(&outputs[0], "stdout");
	output_open(&outputs[1], "stderr");
	int err_file = outputs[1].fd; /* the runtime's own messages, before any rotation */
	int to_child[2] = {-1, -1}, from_out[2] = {-1, -1}, from_err[2] = {-1, -1};
	int listen_fd = -1;
	if (tty) listen_fd = listen_console();
	else if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_out, O_CLOEXEC) < 0 || pipe2(from_err, O_CLOEXEC) < 0) fail("pipe2", "stdio");

	pid_t runtime = fork();
	if (runtime < 0) fail("fork", argv[3]);
	if (runtime == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		signal(SIGPIPE, SIG_DFL);
		int null = open("/dev/null", O_RDWR);
		/* A detached exec hands its stdio to the process itself; with a tty, runc's own messages
		 * still go to stderr, which then is the file. */
		if (tty) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(err_file, 2);
		} else {
			dup2(to_child[0], 0);
			dup2(from_out[1], 1);
			dup2(from_err[1], 2);
		}
		execvp(argv[3], argv + 3);
		dprintf(err_file, "sysrunc-depot-supervise: exec %s: %s (errno %d)\n", argv[3], strerror(errno), errno);
		_exit(127);
	}
	if (!tty) {
		close(to_child[0]);
		close(from_out[1]);
		close(from_err[1]);
	}
	int master = tty ? receive_console(listen_fd, runtime) : -1;
	int status;
	while (waitpid(runtime, &status, 0) < 0)
		if (errno != EINTR) fail("waitpid", argv[3]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!tty) {
			set_nonblocking(from_err[0], "stderr pipe");
			pump(from_err[0], &outputs[1], "stderr");
		}
		unlink("stdin");
		unlink("control");
		report("%s exec exited with status %d (its message is in stderr)", argv[3], WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return 1;
	}
	pid_t process = read_pid("pid");
	if (report_fd >= 0) {
		dprintf(report_fd, "ok %d\n", process);
		close(report_fd);
		report_fd = -1;
	}

	/* Streams: [0] stdout (pipe, or the pty master), [1] stderr (pipes only). */
	int sources[2] = {tty ? master : from_out[0], tty ? -1 : from_err[0]};
	int child_stdin = tty ? master : to_child[1];
	for (int i = 0; i < 2; i++)
		if (sources[i] >= 0) set_nonblocking(sources[i], i == 0 ? "stdout" : "stderr");
	if (!tty) set_nonblocking(child_stdin, "stdin pipe");

	char pending[65536];
	size_t pending_len = 0, pending_off = 0;
	int stdin_open = 1, close_stdin_requested = 0, exited = 0, exit_code = -1;
	long long quiet_since = 0;
	char line[256];
	size_t line_len = 0;

	for (;;) {
		struct pollfd fds[6];
		int n = 0, at_sig = -1, at_ctl = -1, at_in = -1, at_out = -1, at_src[2] = {-1, -1};
		fds[at_sig = n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		fds[at_ctl = n++] = (struct pollfd){.fd = control_fifo, .events = POLLIN};
		if (stdin_open && pending_len == 0 && !exited) fds[at_in = n++] = (struct pollfd){.fd = stdin_fifo, .events = POLLIN};
		if (stdin_open && pending_len > 0) fds[at_out = n++] = (struct pollfd){.fd = child_stdin, .events = POLLOUT};
		for (int i = 0; i < 2; i++)
			if (sources[i] >= 0) fds[at_src[i] = n++] = (struct pollfd){.fd = sources[i], .events = POLLIN};
		if (exited && (sources[0] < 0 && sources[1] < 0)) break;
		int timeout = -1;
		if (exited) {
			long long left = quiet_since + DRAIN_QUIET_MS - now_ms();
			if (left <= 0) break;
			timeout = (int)left;
		}
		int ready = poll(fds, (nfds_t)n, timeout);
		if (ready < 0 && errno == EINTR) continue;
		if (ready < 0) fail("poll", "process streams");
		if (ready == 0) continue;

		if (fds[at_sig].revents) {
			struct signalfd_siginfo info;
			while (read(sigfd, &info, sizeof info) > 0) {}
			pid_t reaped;
			while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
				if (reaped != process) continue;
				exited = 1;
				exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
				quiet_since = now_ms();
			}
		}
		if (fds[at_ctl].revents) {
			ssize_t got = read(control_fifo, line + line_len, sizeof line - 1 - line_len);
			if (got > 0) line_len += (size_t)got;
			char *end;
			while ((end = memchr(line, '\n', line_len)) != NULL) {
				*end = '\0';
				int a = 0, b = 0;
				if (sscanf(line, "w %d %d", &a, &b) == 2 && master >= 0) {
					struct winsize ws = {.ws_row = (unsigned short)a, .ws_col = (unsigned short)b};
					if (ioctl(master, TIOCSWINSZ, &ws) < 0) dprintf(2, "sysrunc-depot-supervise: ioctl TIOCSWINSZ pty master: %s (errno %d)\n", strerror(errno), errno);
				} else if (sscanf(line, "k %d", &a) == 1 && !exited) {
					/* Not reaped yet, so the pid is still this process's. */
					if (kill(process, a) < 0) dprintf(2, "sysrunc-depot-supervise: kill %d %d: %s (errno %d)\n", process, a, strerror(errno), errno);
				} else if (line[0] == 'c') {
					close_stdin_requested = 1;
				}
				size_t used = (size_t)(end - line) + 1;
				memmove(line, end + 1, line_len - used);
				line_len -= used;
			}
			if (line_len == sizeof line - 1) line_len = 0; /* a line too long to be a command */
		}
		if (at_in >= 0 && fds[at_in].revents) {
			ssize_t got = read(stdin_fifo, pending, sizeof pending);
			if (got > 0) {
				pending_len = (size_t)got;
				pending_off = 0;
			}
		}
		if (at_out >= 0 && fds[at_out].revents) {
			ssize_t put = write(child_stdin, pending + pending_off, pending_len - pending_off);
			if (put > 0) {
				pending_off += (size_t)put;
				if (pending_off == pending_len) pending_len = pending_off = 0;
			} else if (put < 0 && errno != EAGAIN && errno != EINTR) {
				stdin_open = 0; /* the process closed its stdin (EPIPE) */
				pending_len = pending_off = 0;
			}
		}
		if (close_stdin_requested && pending_len == 0 && stdin_open) {
			close_stdin_requested = 0;
			if (tty) {
				if (write(master, "\x04", 1) < 0) dprintf(2, "sysrunc-depot-supervise: write VEOF to the pty master: %s (errno %d)\n", strerror(errno), errno);
			} else {
				close(child_stdin);
				stdin_open = 0;
			}
		}
		for (int i = 0; i < 2; i++) {
			if (at_src[i] < 0 || fds[at_src[i]].revents == 0) continue;
			if (exited) quiet_since = now_ms();
			if (!pump(sources[i], &outputs[i], i == 0 ? "stdout" : "stderr")) {
				close(sources[i]);
				sources[i] = -1;
				if (tty) { /* the master was the process's input and its window too */
					master = child_stdin = -1;
					stdin_open = 0;
				}
			}
		}
	}
	unlink("stdin");
	unlink("control");
	write_exit_code(exit_code);
	return 0;
}
