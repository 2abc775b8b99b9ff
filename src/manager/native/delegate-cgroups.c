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

#include "../../host/native/mountinfo-unescape.h"
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

/* A cgroup or cgroup2 mount of this hook's (runc's) mountinfo: fields cut out of the file's text in place. */
struct cgroup_mount {
  int v2;
  const char *superopts, *root, *mountpoint;
};

/*
 * The cgroup and cgroup2 mounts of `mountinfo` (its text, cut in place), in its order: read once,
 * not once per line of /proc/<pid>/cgroup (mountinfo grows with every container on the host).
 */
static struct cgroup_mount *cgroup_mounts(char *mountinfo, size_t *count) {
  size_t cap = 16;
  struct cgroup_mount *mounts = malloc(cap * sizeof(*mounts));
  if (mounts == NULL) die("reading mountinfo: out of memory");
  *count = 0;
  for (char *rest = mountinfo, *line; (line = strsep(&rest, "\n")) != NULL;) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    char *sep = strstr(line, " - cgroup");
    if (sep == NULL) continue;
    *sep = '\0';
    char *fields[5], *head = line, *tail = sep + 3;
    int n = 0;
    while (n < 5 && (fields[n] = strsep(&head, " ")) != NULL) n++;
    char *fstype = strsep(&tail, " "), *source = strsep(&tail, " "), *superopts = strsep(&tail, " ");
    if (n < 5 || source == NULL || superopts == NULL || (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0)) continue;
    mountinfo_unescape(fields[3]);
    mountinfo_unescape(fields[4]);
    if (*count == cap && (mounts = realloc(mounts, (cap *= 2) * sizeof(*mounts))) == NULL) die("reading mountinfo: out of memory");
    mounts[(*count)++] = (struct cgroup_mount){strcmp(fstype, "cgroup2") == 0, superopts, fields[3], fields[4]};
  }
  return mounts;
}

/*
 * The directory of cgroup `cgpath` of the hierarchy with `controllers` ("" for cgroup v2), from
 * the first of `mounts` that is that hierarchy's; 0 if none is mounted.
 */
static int hierarchy_dir(const struct cgroup_mount *mounts, size_t count, const char *controllers, const char *cgpath, char *dir, size_t size) {
  for (size_t i = 0; i < count; i++) {
    const struct cgroup_mount *m = &mounts[i];
    if (controllers[0] == '\0' ? !m->v2 : m->v2 || !names_all(controllers, m->superopts)) continue;
    size_t root_len = strcmp(m->root, "/") == 0 ? 0 : strlen(m->root);
    const char *rel = strncmp(cgpath, m->root, root_len) == 0 ? cgpath + root_len : cgpath;
    while (*rel == '/') rel++;
    snprintf(dir, size, "%s/%s", m->mountpoint, rel);
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
  size_t mount_count;
  struct cgroup_mount *mounts = cgroup_mounts(read_file("/proc/self/mountinfo"), &mount_count);
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
    if (!hierarchy_dir(mounts, mount_count, controllers, cgpath, dir, sizeof(dir))) continue;
    hand_over(dir, uid, gid);
    for (size_t i = 0; i < sizeof(DELEGATED_FILES) / sizeof(DELEGATED_FILES[0]); i++) {
      snprintf(file, sizeof(file), "%s/%s", dir, DELEGATED_FILES[i]);
      if (access(file, F_OK) == 0) hand_over(file, uid, gid);
    }
  }
  return 0;
}
