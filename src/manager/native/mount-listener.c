/*
 * sysrunc-mount-listener: one per system container. Gives the containers an inner runtime starts
 * (an inner dockerd's, podman's, `unshare -p` + `mount -t proc`) the lxcfs /proc figures of their
 * own cgroup, with the image untouched.
 *
 *   sysrunc-mount-listener <socket> <host file>=<procfs name>...
 *
 * The system container's seccomp profile notifies on mount(2) (SCMP_ACT_NOTIFY) and names <socket>
 * as linux.seccomp.listenerPath: runc connects at create and at every exec and sends the filter's
 * notify fd (SCM_RIGHTS, with the container state as payload, unused here). For each notified
 * mount:
 *   - anything but a new procfs (fstype "proc", no bind/remount/move/propagation flag, only flags
 *     with a mount-attribute equivalent): SECCOMP_USER_NOTIF_FLAG_CONTINUE, the kernel does it and
 *     all its checks itself;
 *   - a procfs mount by a caller without CAP_SYS_ADMIN in its effective set: EPERM;
 *   - otherwise a worker does it for the caller: it opens each <host file> as a detached read-only
 *     clone (open_tree), joins the caller's mount, pid and user namespaces and its root and cwd,
 *     forks (to be inside the pid namespace, which decides what the procfs shows), mounts procfs
 *     at the caller's target with the caller's flags and options, moves each clone over the new
 *     mount's <procfs name>, and answers with the mount's result.
 * Pointer arguments are read from /proc/<pid>/mem, then SECCOMP_IOCTL_NOTIF_ID_VALID checks that
 * the caller is still the one blocked in that mount (its pid not reused).
 * fd 3: the start-up report, "ok\n" once the socket listens, or "error <message>\n". Every failed
 * syscall is logged on stderr (the manager points it at a file in the container's run dir).
 * It exits when no notify fd is left open and <socket> has been removed (the manager removes it
 * when it releases the container).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FILES 16
#define MAX_FDS 1024
#define DATA_MAX 4096
#define CAP_SYS_ADMIN_BIT 21
/* With no container process left, how often it checks whether its socket was removed. */
#define IDLE_CHECK_MS 1000

static const char *socket_path;
static const char *file_sources[MAX_FILES];
static const char *file_names[MAX_FILES];
static int file_count;
static struct seccomp_notif_sizes sizes;

static void log_error(const char *op, const char *what, int err) {
	dprintf(2, "sysrunc-mount-listener[%d]: %s %s: %s (errno %d)\n", getpid(), op, what, strerror(err), err);
}

static void fail_start(const char *op, const char *what) {
	int err = errno;
	log_error(op, what, err);
	dprintf(3, "error %s %s: %s\n", op, what, strerror(err));
	exit(1);
}

static int notif_id_valid(int notify_fd, uint64_t id) {
	return ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static void reply(int notify_fd, uint64_t id, int error, uint32_t flags) {
	size_t size = sizes.seccomp_notif_resp > sizeof(struct seccomp_notif_resp) ? sizes.seccomp_notif_resp : sizeof(struct seccomp_notif_resp);
	struct seccomp_notif_resp *resp = calloc(1, size);
	if (resp == NULL) return;
	resp->id = id;
	resp->error = error == 0 ? 0 : -error;
	resp->flags = flags;
	/* ENOENT: the caller was interrupted or died meanwhile; nothing to answer. */
	if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT) log_error("ioctl", "SECCOMP_IOCTL_NOTIF_SEND", errno);
	free(resp);
}

/* A NUL-terminated string from the caller's memory, read page by page; -1 with errno on failure. */
static int read_string(int mem_fd, uint64_t addr, char *buf, size_t size) {
	size_t got = 0;
	while (got < size) {
		size_t chunk = 4096 - (size_t)((addr + got) % 4096);
		if (chunk > size - got) chunk = size - got;
		ssize_t n = pread(mem_fd, buf + got, chunk, (off_t)(addr + got));
		if (n <= 0) {
			errno = n == 0 ? EFAULT : errno;
			return -1;
		}
		if (memchr(buf + got, 0, (size_t)n) != NULL) return 0;
		got += (size_t)n;
	}
	errno = ENAMETOOLONG;
	return -1;
}

static int has_cap_sys_admin(pid_t pid) {
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL) return 0;
	unsigned long long eff = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "CapEff: %llx", &eff) == 1) break;
	fclose(f);
	return (eff >> CAP_SYS_ADMIN_BIT) & 1;
}

/* mount(2) flags -> fsmount attributes; -1 if a flag has none (the kernel then mounts it itself). */
static long mount_attributes(unsigned long flags) {
	static const struct { unsigned long ms; unsigned attr; } map[] = {
		{MS_RDONLY, MOUNT_ATTR_RDONLY}, {MS_NOSUID, MOUNT_ATTR_NOSUID}, {MS_NODEV, MOUNT_ATTR_NODEV},
		{MS_NOEXEC, MOUNT_ATTR_NOEXEC}, {MS_NOATIME, MOUNT_ATTR_NOATIME}, {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME},
		{MS_RELATIME, MOUNT_ATTR_RELATIME}, {MS_STRICTATIME, MOUNT_ATTR_STRICTATIME}, {MS_SILENT, 0},
	};
	long attr = 0;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (flags & map[i].ms) attr |= map[i].attr;
		flags &= ~map[i].ms;
	}
	return flags == 0 ? attr : -1;
}

/* The caller's own fd named as /proc/self/fd/N or /proc/thread-self/fd/N (runc mounts that way). */
static int open_caller_fd_target(pid_t pid, const char *target) {
	const char *prefixes[] = {"/proc/self/fd/", "/proc/thread-self/fd/"};
	for (int i = 0; i < 2; i++) {
		size_t len = strlen(prefixes[i]);
		if (strncmp(target, prefixes[i], len) != 0) continue;
		char *end;
		long fd = strtol(target + len, &end, 10);
		if (*end != 0 || end == target + len) return -1;
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/fd/%ld", pid, fd);
		int opened = open(path, O_PATH | O_CLOEXEC);
		if (opened < 0) log_error("open", path, errno);
		return opened < 0 ? -2 : opened;
	}
	return -1;
}

static int open_ns(pid_t pid, const char *name) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) log_error("open", path, errno);
	return fd;
}

static int same_ns(int fd, const char *own) {
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(own, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* In the caller's namespaces and pid namespace: procfs at the target, lxcfs files over it. Returns an errno. */
static int mount_procfs(const char *target, int target_fd, unsigned attrs, char *data, const int *clones) {
	if (target_fd < 0) target_fd = open(target, O_PATH | O_CLOEXEC);
	if (target_fd < 0) return errno;
	int fs = fsopen("proc", FSOPEN_CLOEXEC);
	if (fs < 0) return errno;
	for (char *save = NULL, *opt = strtok_r(data, ",", &save); opt != NULL; opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');
		if (value != NULL) *value++ = 0;
		if (fsconfig(fs, value == NULL ? FSCONFIG_SET_FLAG : FSCONFIG_SET_STRING, opt, value, 0) < 0) return errno;
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) return errno;
	int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	if (mnt < 0) return errno;
	if (move_mount(mnt, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) return errno;
	/* The mount is made: a file left unbound shows the kernel's figures, not an error. */
	for (int i = 0; i < file_count; i++) {
		if (clones[i] < 0) continue;
		int file = openat(mnt, file_names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (file < 0) log_error("open new procfs's", file_names[i], errno);
		else if (move_mount(clones[i], "", file, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) log_error("move_mount lxcfs file over", file_names[i], errno);
	}
	return 0;
}

/* A worker process (never returns): does one procfs mount for the caller and answers. */
static void serve_procfs_mount(int notify_fd, uint64_t id, pid_t pid, const char *target, unsigned attrs, char *data) {
	signal(SIGCHLD, SIG_DFL);
	if (!has_cap_sys_admin(pid)) {
		reply(notify_fd, id, EPERM, 0);
		_exit(0);
	}
	int clones[MAX_FILES];
	for (int i = 0; i < file_count; i++) {
		clones[i] = open_tree(AT_FDCWD, file_sources[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (clones[i] < 0) {
			log_error("open_tree", file_sources[i], errno);
			continue;
		}
		struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
		if (mount_setattr(clones[i], "", AT_EMPTY_PATH, &ro, sizeof ro) < 0) {
			log_error("mount_setattr read-only", file_sources[i], errno);
			close(clones[i]);
			clones[i] = -1;
		}
	}
	int target_fd = open_caller_fd_target(pid, target);
	int user = open_ns(pid, "ns/user"), mnt = open_ns(pid, "ns/mnt"), pidns = open_ns(pid, "ns/pid");
	int root = open_ns(pid, "root"), cwd = open_ns(pid, "cwd");
	int err = 0;
	if (target_fd == -2 || user < 0 || mnt < 0 || pidns < 0 || root < 0 || cwd < 0) err = ESRCH;
	/* The fds above are the caller's only if it is still blocked in this very mount. */
	if (!notif_id_valid(notify_fd, id)) _exit(0);
	if (err == 0 && setns(mnt, CLONE_NEWNS) < 0) log_error("setns", "mnt", err = errno);
	if (err == 0 && setns(pidns, CLONE_NEWPID) < 0) log_error("setns", "pid", err = errno);
	if (err == 0 && !same_ns(user, "/proc/self/ns/user") && setns(user, CLONE_NEWUSER) < 0) log_error("setns", "user", err = errno);
	/* Act as the container's root: the kernel judges the mount by the caller's user namespace. */
	if (err == 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) log_error("setresuid", "0", err = errno);
	if (err == 0 && (fchdir(root) < 0 || chroot(".") < 0 || fchdir(cwd) < 0)) log_error("chroot", "caller's root and cwd", err = errno);
	if (err == 0) {
		pid_t child = fork();
		if (child < 0) log_error("fork", "into the pid namespace", err = errno);
		if (child == 0) _exit(mount_procfs(target, target_fd, attrs, data, clones));
		int status;
		while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR) {}
		if (child > 0) err = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
		if (err != 0) log_error("mount procfs at", target, err);
	}
	reply(notify_fd, id, err, 0);
	_exit(0);
}

/* One notification: continue it, or fork a worker for a procfs mount. */
static void handle(int notify_fd) {
	size_t size = sizes.seccomp_notif > sizeof(struct seccomp_notif) ? sizes.seccomp_notif : sizeof(struct seccomp_notif);
	struct seccomp_notif *req = calloc(1, size);
	if (req == NULL) return;
	if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
		if (errno != ENOENT && errno != EINTR) log_error("ioctl", "SECCOMP_IOCTL_NOTIF_RECV", errno);
		free(req);
		return;
	}
	uint64_t id = req->id;
	pid_t pid = (pid_t)req->pid;
	uint64_t fstype_addr = req->data.args[2], target_addr = req->data.args[1], data_addr = req->data.args[4];
	unsigned long flags = (unsigned long)req->data.args[3];
	free(req);
	if ((flags & 0xffff0000UL) == MS_MGC_VAL) flags &= 0xffff;
	const unsigned long not_new = MS_REMOUNT | MS_BIND | MS_MOVE | MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
	long attrs = mount_attributes(flags & ~(unsigned long)MS_REC);
	char fstype[8], target[4096], data[DATA_MAX];
	char mem_path[64];
	snprintf(mem_path, sizeof mem_path, "/proc/%d/mem", pid);
	int mem = (flags & not_new) || attrs < 0 || fstype_addr == 0 || target_addr == 0 ? -1 : open(mem_path, O_RDONLY | O_CLOEXEC);
	int procfs = mem >= 0 && read_string(mem, fstype_addr, fstype, sizeof fstype) == 0 && strcmp(fstype, "proc") == 0 &&
		read_string(mem, target_addr, target, sizeof target) == 0 && (data_addr == 0 ? (data[0] = 0, 1) : read_string(mem, data_addr, data, sizeof data) == 0);
	if (mem >= 0) close(mem);
	if (!procfs || !notif_id_valid(notify_fd, id)) {
		reply(notify_fd, id, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
		return;
	}
	pid_t worker = fork();
	if (worker == 0) serve_procfs_mount(notify_fd, id, pid, target, (unsigned)attrs, data);
	if (worker < 0) {
		log_error("fork", "worker", errno);
		reply(notify_fd, id, EAGAIN, 0);
	}
}

/* runc's connection: one message carrying the notify fd. Returns it, or -1. */
static int receive_notify_fd(int listen_fd) {
	int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) return log_error("accept", socket_path, errno), -1;
	struct timeval timeout = {.tv_sec = 5};
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
	static char payload[65536];
	char control[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = payload, .iov_len = sizeof payload};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	int fd = -1;
	if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) < 0) log_error("recvmsg", socket_path, errno);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
		int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *fds = (int *)CMSG_DATA(c);
		for (int i = 0; i < n; i++) {
			if (fd < 0) fd = fds[i];
			else close(fds[i]);
		}
	}
	if (fd < 0) dprintf(2, "sysrunc-mount-listener[%d]: a connection on %s sent no notify fd\n", getpid(), socket_path);
	close(conn);
	return fd;
}

static int socket_removed(const struct stat *bound) {
	struct stat now;
	return lstat(socket_path, &now) < 0 ? errno == ENOENT : now.st_ino != bound->st_ino || now.st_dev != bound->st_dev;
}

int main(int argc, char **argv) {
	if (argc < 2 || argc - 2 > MAX_FILES) {
		fprintf(stderr, "usage: sysrunc-mount-listener <socket> <host file>=<procfs name>... (at most %d)\n", MAX_FILES);
		return 2;
	}
	socket_path = argv[1];
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL || strchr(eq + 1, '/') != NULL) {
			fprintf(stderr, "sysrunc-mount-listener: %s: not <host file>=<procfs name>\n", argv[i]);
			return 2;
		}
		*eq = 0;
		file_sources[file_count] = argv[i];
		file_names[file_count++] = eq + 1;
	}
	/* Workers are reaped by the kernel; each waits for its own child itself. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) fail_start("seccomp", "SECCOMP_GET_NOTIF_SIZES");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		fail_start("bind", socket_path);
	}
	strcpy(addr.sun_path, socket_path);
	int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0) fail_start("socket", "AF_UNIX");
	unlink(socket_path);
	if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail_start("bind", socket_path);
	if (listen(listen_fd, 64) < 0) fail_start("listen", socket_path);
	struct stat bound;
	if (lstat(socket_path, &bound) < 0) fail_start("stat", socket_path);
	dprintf(3, "ok\n");
	close(3);

	static struct pollfd fds[MAX_FDS + 1];
	int count = 0;
	for (;;) {
		fds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		int ready = poll(fds, (nfds_t)count + 1, count == 0 ? IDLE_CHECK_MS : -1);
		if (ready < 0 && errno != EINTR) fail_start("poll", "notify fds");
		if (fds[0].revents & POLLIN) {
			int fd = receive_notify_fd(listen_fd);
			if (fd >= 0 && count == MAX_FDS) {
				dprintf(2, "sysrunc-mount-listener[%d]: more than %d processes with their own notify fd; closing one\n", getpid(), MAX_FDS);
				close(fd);
			} else if (fd >= 0) {
				fds[++count] = (struct pollfd){.fd = fd, .events = POLLIN};
			}
		}
		for (int i = 1; i <= count; i++) {
			if (fds[i].revents & POLLIN) handle(fds[i].fd);
			else if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
				/* Every process that had this filter is gone. */
				close(fds[i].fd);
				fds[i--] = fds[count--];
			}
		}
		if (count == 0 && socket_removed(&bound)) return 0;
	}
}
