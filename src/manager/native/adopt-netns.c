/*
 * sysrunc-adopt-netns: the OCI createRuntime hook sysrunc adds to a Kubernetes pod's sandbox
 * (src/spec-transform/pod-network.ts). The same contract as bin/sysrunc-adopt-netns, the shell
 * reference, in one process: under runc's create every process started costs the pod 5-10 ms, and
 * the script starts about five (bench/README.md, round 9).
 *
 *   sysrunc-adopt-netns <pinned netns path>      (container state JSON on stdin, from runc)
 *
 * containerd made the pod's network namespace on the host and CNI configured it; the sandbox has a
 * network namespace of its own, owned by the pod's user namespace. The hook:
 *   1. joins the mount namespace of runc's parent (the shim) if runc runs in another one, so that
 *      the pinned file it replaces is the one containerd sees;
 *   2. reads the pinned namespace's links, their addresses and the main table's routes;
 *   3. moves every link but lo into the sandbox's namespace (/proc/<pid>/ns/net);
 *   4. there: lo up, the addresses, the links up, the routes (those through a gateway last);
 *   5. replaces the pinned file with a bind of the sandbox's namespace (not a mount on top:
 *      containerd's teardown unmounts the file once and then removes it).
 * Any failure: one line on stderr naming the step, the path or link, and the errno; exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hook-common.h"
#include "rtnetlink.h"

#define MAX_LINKS 32
#define MAX_KEPT 256

struct link {
  int index;
  char name[IFNAMSIZ];
  /* The kernel keeps it where it is (a bridge, a fallback tunnel such as tunl0 or sit0). */
  int stays;
  /* Its index in the sandbox's namespace, where the kernel may have given it another. */
  int new_index;
};

/* An address or route to recreate: the message to send, and its link (none: -1). */
struct kept {
  struct nl_msg msg;
  int link;
  int via_gateway;
};

static struct link links[MAX_LINKS];
static int link_count;
static struct kept addrs[MAX_KEPT], routes[MAX_KEPT];
static int addr_count, route_count;
static int global_v6;

const char *const hook_name = "sysrunc-adopt-netns";

/* The slot in links of the old namespace's link `index`, or -1 (lo, or a link not moved). */
static int link_slot(int index) {
  for (int i = 0; i < link_count; i++)
    if (links[i].index == index) return i;
  return -1;
}

/* A kept address's or route's link, for messages. */
static const char *link_name(const struct kept *k) {
  return k->link < 0 ? "no link" : links[k->link].name;
}

/* The parent of `pid` from its stat line (the field after the command name's last ')' and the state). */
static pid_t parent_of(pid_t pid) {
  char path[64], line[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, line, sizeof(line) - 1);
  close(fd);
  if (n <= 0) return 0;
  line[n] = '\0';
  const char *end = strrchr(line, ')');
  int ppid = 0;
  if (end == NULL || sscanf(end + 1, " %*c %d", &ppid) != 1) return 0;
  return ppid;
}

/* runc runs, with its hooks, in a mount namespace of its own: the pinned file is replaced in the shim's. */
static void join_shim_mount_ns(void) {
  pid_t shim = parent_of(getppid());
  if (shim <= 1) return;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/ns/mnt", shim);
  struct stat theirs, ours;
  if (stat(path, &theirs) != 0 || stat("/proc/self/ns/mnt", &ours) != 0) return;
  if (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) return;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNS) != 0) die("joining the shim's mount namespace %s: %s (errno %d)", path, strerror(errno), errno);
  close(fd);
}

/* Enters the network namespace open at `fd` and returns a route socket there. */
static int socket_in(int fd, const char *path) {
  if (setns(fd, CLONE_NEWNET) != 0) die("entering network namespace %s: %s (errno %d)", path, strerror(errno), errno);
  int sock = nl_open();
  if (sock < 0) die("netlink socket in %s: %s (errno %d)", path, strerror(errno), errno);
  return sock;
}

static void collect_link(const struct nlmsghdr *h, void *arg) {
  (void)arg;
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  if (h->nlmsg_type != RTM_NEWLINK || (ifi->ifi_flags & IFF_LOOPBACK) != 0) return;
  int len = (int)IFLA_PAYLOAD(h);
  for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type != IFLA_IFNAME) continue;
    if (link_count == MAX_LINKS) die("more than %d links to move", MAX_LINKS);
    links[link_count].index = ifi->ifi_index;
    snprintf(links[link_count].name, IFNAMSIZ, "%s", (const char *)RTA_DATA(a));
    link_count++;
  }
}

static struct kept *next_kept(struct kept *list, int *count, const char *what) {
  if (*count == MAX_KEPT) die("more than %d %s to recreate", MAX_KEPT, what);
  return &list[(*count)++];
}

/* Keeps an address of a moved link: its addresses and broadcast, and, for IPv6, no duplicate detection (the address was in use already). */
static void collect_addr(const struct nlmsghdr *h, void *arg) {
  (void)arg;
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  int slot = link_slot((int)ifa->ifa_index);
  if (h->nlmsg_type != RTM_NEWADDR || slot < 0) return;
  if (ifa->ifa_family == AF_INET6 && ifa->ifa_scope == RT_SCOPE_LINK) return;
  struct kept *k = next_kept(addrs, &addr_count, "addresses");
  k->link = slot;
  nl_start(&k->msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifaddrmsg));
  struct ifaddrmsg *out = nl_header(&k->msg);
  *out = *ifa;
  out->ifa_flags = 0;
  unsigned int flags = ifa->ifa_flags & IFA_F_NOPREFIXROUTE;
  int len = (int)IFA_PAYLOAD(h);
  for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
    case IFA_FLAGS: flags = *(const unsigned int *)RTA_DATA(a) & IFA_F_NOPREFIXROUTE; break;
    case IFA_ADDRESS:
    case IFA_LOCAL:
    case IFA_BROADCAST:
    case IFA_LABEL:
      if (nl_add_attr(&k->msg, a->rta_type, RTA_DATA(a), RTA_PAYLOAD(a)) != 0) die("an address of %s is too long to copy", link_name(k));
      break;
    }
  }
  if (ifa->ifa_family == AF_INET6) {
    flags |= IFA_F_NODAD;
    global_v6 = 1;
  }
  if (nl_add_attr(&k->msg, IFA_FLAGS, &flags, sizeof(flags)) != 0) die("an address of %s is too long to copy", link_name(k));
}

/* A route CNI or the kernel's addresses made that the new namespace needs: the main table's, not the kernel's own, not link-local or multicast IPv6. */
static int route_is_kept(const struct rtmsg *rt, const struct rtattr *table_attr, const struct rtattr *dst) {
  unsigned int table = table_attr != NULL ? *(const unsigned int *)RTA_DATA(table_attr) : rt->rtm_table;
  if (table != RT_TABLE_MAIN || rt->rtm_protocol == RTPROT_KERNEL || (rt->rtm_flags & RTM_F_CLONED) != 0) return 0;
  if (rt->rtm_type != RTN_UNICAST && rt->rtm_type != RTN_BLACKHOLE && rt->rtm_type != RTN_UNREACHABLE && rt->rtm_type != RTN_PROHIBIT) return 0;
  if (rt->rtm_family == AF_INET6 && dst != NULL && rt->rtm_dst_len >= 8) {
    const unsigned char *d = RTA_DATA(dst);
    if (d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80)) return 0;
  }
  return 1;
}

static void collect_route(const struct nlmsghdr *h, void *arg) {
  (void)arg;
  const struct rtmsg *rt = NLMSG_DATA(h);
  if (h->nlmsg_type != RTM_NEWROUTE) return;
  const struct rtattr *table = NULL, *dst = NULL, *oif = NULL;
  int len = (int)RTM_PAYLOAD(h);
  for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == RTA_TABLE) table = a;
    if (a->rta_type == RTA_DST) dst = a;
    if (a->rta_type == RTA_OIF) oif = a;
  }
  if (!route_is_kept(rt, table, dst)) return;
  int slot = oif == NULL ? -1 : link_slot(*(const int *)RTA_DATA(oif));
  if (oif != NULL && slot < 0) return;
  struct kept *k = next_kept(routes, &route_count, "routes");
  k->link = slot;
  nl_start(&k->msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
  struct rtmsg *out = nl_header(&k->msg);
  *out = *rt;
  // Only onlink is a flag route add takes back: linkdown and dead describe the link now.
  out->rtm_flags = rt->rtm_flags & RTNH_F_ONLINK;
  len = (int)RTM_PAYLOAD(h);
  for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
    case RTA_GATEWAY:
    case RTA_VIA: k->via_gateway = 1; /* fall through */
    case RTA_DST:
    case RTA_SRC:
    case RTA_OIF:
    case RTA_PRIORITY:
    case RTA_PREFSRC:
    case RTA_METRICS:
    case RTA_TABLE:
    case RTA_PREF:
      if (nl_add_attr(&k->msg, a->rta_type, RTA_DATA(a), RTA_PAYLOAD(a)) != 0) die("a route of %s is too long to copy", link_name(k));
      break;
    case RTA_MULTIPATH: die("a multipath route of %s: not supported", link_name(k));
    }
  }
}

/* Moves every collected link into the namespace open at `to_fd`, through the old namespace's socket. */
static void move_links(int from_sock, int to_fd, const char *from, const char *to) {
  for (int i = 0; i < link_count; i++) {
    struct nl_msg m;
    nl_start(&m, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
    struct ifinfomsg *ifi = nl_header(&m);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = links[i].index;
    unsigned int fd = (unsigned int)to_fd;
    nl_add_attr(&m, IFLA_NET_NS_FD, &fd, sizeof(fd));
    int r = nl_request(from_sock, &m);
    // EINVAL: a link that is local to its namespace (NETIF_F_NETNS_LOCAL: bridges, and the
    // fallback tunnels every namespace gets once ipip or sit is loaded, as for Calico's IPIP).
    // It is not the pod's interface, and the sandbox's namespace has its own fallback tunnels.
    if (r == -EINVAL) links[i].stays = 1;
    else if (r != 0) die("moving %s from %s into %s: %s (errno %d)", links[i].name, from, to, strerror(-r), -r);
  }
}

/* The moved links' indexes in the new namespace, found by name. */
static void collect_new_index(const struct nlmsghdr *h, void *arg) {
  (void)arg;
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  int len = (int)IFLA_PAYLOAD(h);
  for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == IFLA_IFNAME)
      for (int i = 0; i < link_count; i++)
        if (strncmp(links[i].name, RTA_DATA(a), IFNAMSIZ) == 0) links[i].new_index = ifi->ifi_index;
}

/* Whether a kept address or route stayed behind with its link. */
static int stayed(const struct kept *k) {
  return k->link >= 0 && links[k->link].stays;
}

static void set_up(int sock, int index, const char *name, const char *to) {
  struct nl_msg m;
  nl_start(&m, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  struct ifinfomsg *ifi = nl_header(&m);
  ifi->ifi_index = index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  int r = nl_request(sock, &m);
  if (r != 0) die("setting %s up in %s: %s (errno %d)", name, to, strerror(-r), -r);
}

/* Points a kept route's output link at its index in the new namespace. */
static void relink_route(struct kept *k, int index) {
  struct rtmsg *rt = nl_header(&k->msg);
  int len = (int)RTM_PAYLOAD(&k->msg.hdr);
  for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == RTA_OIF) *(int *)RTA_DATA(a) = index;
}

static void send_kept(int sock, struct kept *k, const char *what, const char *to) {
  int r = nl_request(sock, &k->msg);
  // The kernel may have made it already (an address's own route, say).
  if (r != 0 && r != -EEXIST) die("adding %s of %s in %s: %s (errno %d)", what, link_name(k), to, strerror(-r), -r);
}

/* Step 4: lo up, the addresses, the links up, routes on the link, then routes through a gateway. */
static void configure(int sock, const char *to) {
  int r = nl_dump(sock, RTM_GETLINK, AF_UNSPEC, collect_new_index, NULL);
  if (r != 0) die("listing the links of %s: %s (errno %d)", to, strerror(-r), -r);
  for (int i = 0; i < link_count; i++)
    if (!links[i].stays && links[i].new_index == 0) die("%s is not in %s after the move", links[i].name, to);
  set_up(sock, 1, "lo", to);
  for (int i = 0; i < addr_count; i++) {
    if (stayed(&addrs[i])) continue;
    ((struct ifaddrmsg *)nl_header(&addrs[i].msg))->ifa_index = (unsigned int)links[addrs[i].link].new_index;
    send_kept(sock, &addrs[i], "an address", to);
  }
  for (int i = 0; i < link_count; i++)
    if (!links[i].stays) set_up(sock, links[i].new_index, links[i].name, to);
  for (int gateway = 0; gateway <= 1; gateway++)
    for (int i = 0; i < route_count; i++) {
      if (routes[i].via_gateway != gateway || stayed(&routes[i])) continue;
      if (routes[i].link >= 0) relink_route(&routes[i], links[routes[i].link].new_index);
      send_kept(sock, &routes[i], "a route", to);
    }
}

int main(int argc, char **argv) {
  if (argc != 2) die("usage: sysrunc-adopt-netns <pinned netns path> (container state on stdin)");
  const char *from = argv[1];
  join_shim_mount_ns();
  pid_t pid = state_pid();
  char to[64];
  snprintf(to, sizeof(to), "/proc/%d/ns/net", pid);
  int from_fd = open(from, O_RDONLY | O_CLOEXEC);
  if (from_fd < 0) die("network namespace %s: %s (errno %d)", from, strerror(errno), errno);
  int to_fd = open(to, O_RDONLY | O_CLOEXEC);
  if (to_fd < 0) die("the sandbox's network namespace %s: %s (errno %d)", to, strerror(errno), errno);

  int from_sock = socket_in(from_fd, from);
  int r = nl_dump(from_sock, RTM_GETLINK, AF_UNSPEC, collect_link, NULL);
  if (r == 0) r = nl_dump(from_sock, RTM_GETADDR, AF_UNSPEC, collect_addr, NULL);
  if (r == 0) r = nl_dump(from_sock, RTM_GETROUTE, AF_INET, collect_route, NULL);
  // An IPv6 route through a gateway needs a global IPv6 address to reach it.
  if (r == 0 && global_v6) r = nl_dump(from_sock, RTM_GETROUTE, AF_INET6, collect_route, NULL);
  if (r != 0) die("reading the links, addresses and routes of %s: %s (errno %d)", from, strerror(-r), -r);
  move_links(from_sock, to_fd, from, to);
  configure(socket_in(to_fd, to), to);

  // The file containerd pinned is what its port-forward, CNI's DEL at teardown and any other tool
  // enter for the pod's network: from now on, the pod's own namespace. The fd through it would
  // keep the mount busy.
  close(from_fd);
  if (umount2(from, 0) != 0) die("unmounting %s: %s (errno %d)", from, strerror(errno), errno);
  if (mount(to, from, NULL, MS_BIND, NULL) != 0) die("binding the pod's network namespace %s at %s: %s (errno %d)", to, from, strerror(errno), errno);
  return 0;
}
