/*
 * The few rtnetlink calls sysrunc-adopt-netns makes: one socket per network namespace, a request
 * answered by an ack, and a dump walked message by message.
 */
#ifndef SYSRUNC_RTNETLINK_H
#define SYSRUNC_RTNETLINK_H

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>

/* Large enough for any message the hook builds or keeps (an address, a route with its metrics). */
#define NL_MSG_MAX 1024

struct nl_msg {
  struct nlmsghdr hdr;
  /* The family header (ifinfomsg, ifaddrmsg, rtmsg) and the attributes follow the header. */
  char body[NL_MSG_MAX - sizeof(struct nlmsghdr)];
};

/* A NETLINK_ROUTE socket in the calling thread's network namespace; -1 with errno set. */
int nl_open(void);

/* A new request of `type` with `flags` (NLM_F_REQUEST and NLM_F_ACK are added) and a zeroed family header of `header_len`. */
void nl_start(struct nl_msg *m, int type, int flags, size_t header_len);

/* Appends one attribute; 0, or -1 when the message would exceed NL_MSG_MAX. */
int nl_add_attr(struct nl_msg *m, int type, const void *data, size_t len);

/* The message's family header (just after the netlink header). */
void *nl_header(struct nl_msg *m);

/* Sends `m` and reads its ack: 0, or the negative errno the kernel answered. */
int nl_request(int fd, struct nl_msg *m);

/* Dumps `type` (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) for `family`, calling `each` for every answer; 0, or a negative errno. */
int nl_dump(int fd, int type, unsigned char family, void (*each)(const struct nlmsghdr *, void *), void *arg);

#endif
