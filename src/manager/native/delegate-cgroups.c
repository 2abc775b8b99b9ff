/*
 * sysrunc-delegate-cgroups: the OCI createRuntime hook sysrunc adds to a system container whose
 * cgroups runc's systemd driver makes (src/spec-transform/cgroup-delegation.ts; with the cgroupfs
 * driver the manager hands them over before runc runs). The same contract as
 * bin/sysrunc-delegate-cgroups, the shell reference, in one process and without a chown per call:
 * the script costs a system container's create ~35 ms on cgroup v1's dozen hierarchies.
 *
 *   sysrunc-delegate-cgroups <uid> <gid>      (container state JSON on stdin, from runc)
 *
 * For each line of /proc/<pid>/cgroup, the hierarchy's mount (cgroup2 for the unified line, the
 * cgroup mount whose options name all the line's controllers otherwise): the container's cgroup
 * directory and the files that let it manage children (never the limit files its caller set) are
 * chowned to <uid>:<gid>, as systemd's Delegate= does. A hierarchy's root, and a cgroup the
 * container shares with runc (a hierarchy runc made nothing in), are not the container's to own:
 * they are left alone. Any failure: one line on stderr naming the path and the errno; exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook-common.h"

/* The files a cgroup's owner needs to manage children: cgroup v1 and v2 alike, where they exist. */
static const char *const DELEGATED_FILES[] = {"cgroup.procs", "tasks", "cgroup.clone_children", "cgroup.subtree_control", "cgroup.threads", "notify_on_release"};

const char *const hook_name = "sysrunc-delegate-cgroups";

static char *read_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open %s: %s (errno %d)", path, strerror(errno), errno);
  char *text = read_all(fd);
  if (text == NULL) die("read %s: %s (errno %d)", path, strerror(errno), errno);
  close(fd);
  return text;
}

static unsigned long id_arg(const char *arg, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || v > 0xfffffffeUL) die("%s %s: not a host id", what, arg);
  return v;
}

/* mountinfo's octal escapes (\040 for a space...), undone in place. */
static void unescape(char *s) {
  char *out = s;
  for (; *s != '\0'; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *out++ = *s;
    }
  }
  *out = '\0';
}

/* Whether every controller of a comma-separated list is among the mount's comma-separated options. */
static int names_all(const char *controllers, const char *options) {
  char want[256];
  snprintf(want, sizeof(want), "%s", controllers);
  for (char *save = NULL, *c = strtok_r(want, ",", &save); c != NULL; c = strtok_r(NULL, ",", &save)) {
    size_t n = strlen(c);
    const char *at = options;
    int found = 0;
    while (!found && (at = strstr(at, c)) != NULL) {
      found = (at == options || at[-1] == ',') && (at[n] == ',' || at[n] == '\0');
      at += n;
    }
    if (!found) return 0;
  }
  return 1;
}

/*
 * The directory of cgroup `cgpath` of the hierarchy with `controllers` ("" for cgroup v2), from
 * the first matching mount of `mountinfo` (a copy: fields are cut in place); 0 if none is mounted.
 */
static int hierarchy_dir(const char *mountinfo, const char *controllers, const char *cgpath, char *dir, size_t size) {
  for (const char *line = mountinfo; *line != '\0';) {
    const char *eol = strchrnul(line, '\n');
    char copy[4096];
    snprintf(copy, sizeof(copy), "%.*s", (int)(eol - line), line);
    line = *eol == '\0' ? eol : eol + 1;
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    char *fields[5], *save = NULL, *sep = strstr(copy, " - ");
    if (sep == NULL) continue;
    *sep = '\0';
    int n = 0;
    for (char *f = strtok_r(copy, " ", &save); f != NULL && n < 5; f = strtok_r(NULL, " ", &save)) fields[n++] = f;
    char *fstype = strtok_r(sep + 3, " ", &save), *source = strtok_r(NULL, " ", &save), *superopts = strtok_r(NULL, " ", &save);
    if (n < 5 || fstype == NULL || source == NULL || superopts == NULL) continue;
    if (controllers[0] == '\0' ? strcmp(fstype, "cgroup2") != 0 : strcmp(fstype, "cgroup") != 0 || !names_all(controllers, superopts)) continue;
    char *root = fields[3], *mountpoint = fields[4];
    unescape(root);
    unescape(mountpoint);
    size_t root_len = strcmp(root, "/") == 0 ? 0 : strlen(root);
    const char *rel = strncmp(cgpath, root, root_len) == 0 ? cgpath + root_len : cgpath;
    while (*rel == '/') rel++;
    snprintf(dir, size, "%s/%s", mountpoint, rel);
    return 1;
  }
  return 0;
}

/* Whether `line` ("id:controllers:path", `len` bytes) is also a line of `own`, this hook's (runc's) /proc/self/cgroup. */
static int shared_with_runc(const char *own, const char *line, size_t len) {
  for (const char *at = own; *at != '\0';) {
    const char *eol = strchrnul(at, '\n');
    if ((size_t)(eol - at) == len && strncmp(at, line, len) == 0) return 1;
    at = *eol == '\0' ? eol : eol + 1;
  }
  return 0;
}

static void hand_over(const char *path, uid_t uid, gid_t gid) {
  if (chown(path, uid, gid) != 0) die("chown %s: %s (errno %d)", path, strerror(errno), errno);
}

int main(int argc, char **argv) {
  if (argc != 3) die("usage: sysrunc-delegate-cgroups <uid> <gid> (container state on stdin)");
  uid_t uid = (uid_t)id_arg(argv[1], "uid");
  gid_t gid = (gid_t)id_arg(argv[2], "gid");
  pid_t pid = state_pid();

  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
  char *cgroups = read_file(path);
  char *own = read_file("/proc/self/cgroup");
  char *mountinfo = read_file("/proc/self/mountinfo");
  for (const char *line = cgroups; *line != '\0';) {
    const char *eol = strchrnul(line, '\n');
    size_t len = (size_t)(eol - line);
    char entry[4096];
    snprintf(entry, sizeof(entry), "%.*s", (int)len, line);
    int shared = shared_with_runc(own, line, len);
    line = *eol == '\0' ? eol : eol + 1;
    char *controllers = strchr(entry, ':');
    char *cgpath = controllers == NULL ? NULL : strchr(controllers + 1, ':');
    if (cgpath == NULL || shared) continue;
    *controllers++ = '\0';
    *cgpath++ = '\0';
    if (strcmp(cgpath, "/") == 0) continue;
    char dir[4096], file[4200];
    if (!hierarchy_dir(mountinfo, controllers, cgpath, dir, sizeof(dir))) continue;
    hand_over(dir, uid, gid);
    for (size_t i = 0; i < sizeof(DELEGATED_FILES) / sizeof(DELEGATED_FILES[0]); i++) {
      snprintf(file, sizeof(file), "%s/%s", dir, DELEGATED_FILES[i]);
      if (access(file, F_OK) == 0) hand_over(file, uid, gid);
    }
  }
  return 0;
}
