/*
 * dist/sysrunc: the path engines are given as their runtime, without a shell's start per call.
 *
 * bin/sysrunc (POSIX sh) is the reference: this does what it does for the calls dockerd,
 * containerd and podman make on every container, in this process, and execs bin/sysrunc (same
 * argv, environment and pid) for anything else ("hand to the script"):
 *   create, run  prepare_call_hand_over (prepare-hand-over.c), as bin/sysrunc's exec of
 *                sysrunc-prepare-call --hand-over; its hand-backs go to bin/sysrunc.
 *   delete       runc alone, or for a hint asking for the synchronous form: runc as a child, then
 *                delete_release (delete-release.c); with no answer, bin/sysrunc is handed
 *                SYSRUNC_HAND_BACK=<pid>:deleted:<runc's status> and asks the per-call binary
 *                without running runc's delete again.
 *   exec         runc alone, or for a hint granting capabilities exec_grant (exec-grant.c) first;
 *                a file it does not take as certain goes to bin/sysrunc.
 *   others       runc (execvp, sysrunc's flags dropped); a runtime not found goes to bin/sysrunc,
 *                which words the error. features and --version go to bin/sysrunc.
 * A config file launcher-config.c does not read, a runtime not found, SYSRUNC_HAND_BACK of this
 * pid: bin/sysrunc. The fault points (SYSRUNC_TEST_FAULT) create:before-runc and delete:after-runc
 * are here as in bin/sysrunc. SYSRUNC_PARSE_ONLY (tests) prints what bin/sysrunc prints.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "delete-release.h"
#include "exec-grant.h"
#include "launcher.h"
#include "manager-call.h"
#include "prepare-hand-over.h"

enum { MAX_HINT = 4096 };

static char script[PATH_MAX];
static int original_argc;
static char **original_argv;

/* <top>/bin/sysrunc, <top> being this binary's directory's parent (dist/sysrunc). */
static int find_script(void) {
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0) {
		fprintf(stderr, "sysrunc: readlink /proc/self/exe: %s\n", strerror(errno));
		return -1;
	}
	self[n] = '\0';
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(self, '/');
		if (slash == NULL) {
			fprintf(stderr, "sysrunc: /proc/self/exe is %s: no install directory above it\n", self);
			return -1;
		}
		*slash = '\0';
	}
	if (snprintf(script, sizeof script, "%s/bin/sysrunc", self) >= (int)sizeof script) {
		fprintf(stderr, "sysrunc: %s/bin/sysrunc: path too long\n", self);
		return -1;
	}
	return 0;
}

/* bin/sysrunc with this call's argv and environment, in this process. */
static int hand_to_script(void) {
	struct stat self, target;
	/* A copy of this binary installed as <dir>/bin/sysrunc would exec itself for ever. */
	if (stat("/proc/self/exe", &self) == 0 && stat(script, &target) == 0 && self.st_dev == target.st_dev && self.st_ino == target.st_ino) {
		fprintf(stderr, "sysrunc: %s is this launcher, not bin/sysrunc: install dist/sysrunc as <top>/dist/sysrunc beside <top>/bin/sysrunc\n", script);
		return 1;
	}
	original_argv[0] = script;
	execv(script, original_argv);
	fprintf(stderr, "sysrunc: exec %s: %s\n", script, strerror(errno));
	return 127;
}

/* runtime with args (runc's argv after its name), in this process; bin/sysrunc if it cannot start. */
static int exec_runtime(const char *runtime, struct launcher_call *call) {
	char **argv = call->args - 1;
	char *saved = argv[0];
	/* args is argv + 1 or a copy with room before it (launcher_parse): argv[0] is the runtime's name. */
	argv[0] = (char *)runtime;
	execvp(runtime, argv);
	argv[0] = saved;
	return hand_to_script();
}

/* As `command -v` finds a file: PATH searched, a regular executable file. Unsure: 0. */
static int runtime_found(const char *runtime) {
	struct stat st;
	char candidate[PATH_MAX];
	if (strchr(runtime, '/') != NULL) return stat(runtime, &st) == 0 && S_ISREG(st.st_mode) && access(runtime, X_OK) == 0;
	const char *path = getenv("PATH");
	if (path == NULL || *runtime == '\0') return 0;
	for (const char *dir = path;; dir++) {
		size_t len = strcspn(dir, ":");
		if (snprintf(candidate, sizeof candidate, "%.*s%s%s", (int)len, dir, len == 0 ? "" : "/", runtime) < (int)sizeof candidate &&
		    stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
			return 1;
		dir += len;
		if (*dir == '\0') return 0;
	}
}

/* The manager's hint for id (<dir of socket>/hints/<id>, its first line) into hint; "" if none. */
static void read_hint(const char *socket_path, const char *id, char *hint, size_t size) {
	char path[PATH_MAX];
	const char *slash = strrchr(socket_path, '/');
	int dir_len = slash == NULL ? (int)strlen(socket_path) : (int)(slash - socket_path);
	hint[0] = '\0';
	if (*id == '\0' || strchr(id, '/') != NULL || strcmp(id, ".") == 0 || strcmp(id, "..") == 0) return;
	if (snprintf(path, sizeof path, "%.*s/hints/%s", dir_len, socket_path, id) >= (int)sizeof path) return;
	FILE *f = fopen(path, "re");
	if (f == NULL) return;
	if (fgets(hint, (int)size, f) == NULL) hint[0] = '\0';
	fclose(f);
	hint[strcspn(hint, "\n")] = '\0';
}

static int set_caller_pid(void) {
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (setenv("SYSRUNC_CALLER_PID", pid, 1) == 0) return 0;
	perror("sysrunc: setenv SYSRUNC_CALLER_PID");
	return -1;
}

/* runc's delete as a child, then the release; runc's status if the manager did not answer. */
static int synchronous_delete(const struct launcher_config *config, struct launcher_call *call) {
	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		perror("sysrunc: fork for runc's delete");
		return 1;
	}
	if (child == 0) {
		char **argv = call->args - 1;
		argv[0] = (char *)config->runtime;
		execvp(config->runtime, argv);
		fprintf(stderr, "sysrunc: exec %s: %s\n", config->runtime, strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	int wstatus;
	while (waitpid(child, &wstatus, 0) < 0)
		if (errno != EINTR) {
			perror("sysrunc: waitpid for runc's delete");
			return 1;
		}
	/* As sh's $?: the exit status, or 128 + the signal. */
	int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	fault_point("delete:after-runc");
	int answered = delete_release(config->socket, status, call->argc, call->args);
	if (answered != NOT_ANSWERED) return answered;
	char mark[64];
	snprintf(mark, sizeof mark, "%d:deleted:%d", (int)getpid(), status);
	if (setenv("SYSRUNC_HAND_BACK", mark, 1) != 0) {
		perror("sysrunc: setenv SYSRUNC_HAND_BACK");
		return status;
	}
	return hand_to_script();
}

static int delete_or_exec(const struct launcher_config *config, struct launcher_call *call, int is_delete) {
	struct container_target target;
	char hint[MAX_HINT];
	if (!runtime_found(config->runtime) || set_caller_pid() != 0) return hand_to_script();
	if (launcher_container_id(call->argc, call->args, &target) && (is_delete || target.process_flag)) {
		read_hint(config->socket, target.id, hint, sizeof hint);
		if (is_delete && strstr(hint, "\"delete\":\"sync\"") != NULL) return synchronous_delete(config, call);
		if (!is_delete && strstr(hint, "\"exec\":\"grant-capabilities\"") != NULL &&
		    (*target.process_file == '\0' || exec_grant(target.process_file) != 0))
			return hand_to_script();
	}
	return exec_runtime(config->runtime, call);
}

static int create_or_run(const struct launcher_config *config) {
	char mine[32];
	const char *handed_back = getenv("SYSRUNC_HAND_BACK");
	snprintf(mine, sizeof mine, "%d:", (int)getpid());
	if ((handed_back != NULL && strncmp(handed_back, mine, strlen(mine)) == 0) || !runtime_found(config->runtime)) return hand_to_script();
	/* Not runc's to see (bin/sysrunc unsets it too). */
	if (unsetenv("SYSRUNC_HAND_BACK") != 0) {
		perror("sysrunc: unsetenv SYSRUNC_HAND_BACK");
		return 1;
	}
	if (set_caller_pid() != 0) return 1;
	return prepare_call_hand_over(script, config->runtime, config->socket, original_argc - 1, original_argv + 1);
}

/* Tests only: bin/sysrunc's SYSRUNC_PARSE_ONLY lines. */
static int print_parse(const struct launcher_call *call, int is_delete_or_exec) {
	struct container_target target;
	printf("subcommand=%s\nown_flags=%s\n", call->subcommand, call->own_flags ? "1" : "");
	for (int i = 0; i < call->argc; i++) printf("arg=%s\n", call->args[i]);
	if (is_delete_or_exec && launcher_container_id(call->argc, call->args, &target))
		printf("id=%s\nprocess=%s\nprocess_file=%s\n", target.id, target.process_flag ? "1" : "", target.process_file);
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
	struct launcher_call call;
	struct launcher_config config;
	original_argc = argc;
	original_argv = argv;
	if (find_script() != 0) return 1;
	/* Room before args for the runtime's name (exec_runtime). */
	if (launcher_parse(argc - 1, argv + 1, &call) != 0) return 1;
	if (launcher_read_config(&config) != 0) return hand_to_script();
	const char *sub = call.subcommand;
	int is_delete = strcmp(sub, "delete") == 0, is_exec = strcmp(sub, "exec") == 0;
	const char *parse_only = getenv("SYSRUNC_PARSE_ONLY");
	if (parse_only != NULL && *parse_only != '\0') {
		/* bin/sysrunc asks the per-call binary about a runtime not found before delete's and exec's id. */
		if ((is_delete || is_exec) && !runtime_found(config.runtime)) return hand_to_script();
		return print_parse(&call, is_delete || is_exec);
	}
	if (strcmp(sub, "create") == 0 || strcmp(sub, "run") == 0) return create_or_run(&config);
	if (is_delete || is_exec) return delete_or_exec(&config, &call, is_delete);
	if (strcmp(sub, "features") == 0 || strcmp(sub, "--version") == 0) return hand_to_script();
	return exec_runtime(config.runtime, &call);
}
