/* rtnetlink.h's calls: plain sockets, one request at a time, answers checked by sequence number. */
#define _GNU_SOURCE
#include "rtnetlink.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned int next_seq = 1;

int nl_open(void) {
  return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

void nl_start(struct nl_msg *m, int type, int flags, size_t header_len) {
  memset(m, 0, sizeof(*m));
  m->hdr.nlmsg_len = NLMSG_LENGTH(header_len);
  m->hdr.nlmsg_type = (unsigned short)type;
  m->hdr.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
}

int nl_add_attr(struct nl_msg *m, int type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(m->hdr.nlmsg_len);
  size_t rta_len = RTA_LENGTH(len);
  if (at + RTA_ALIGN(rta_len) > sizeof(*m)) return -1;
  struct rtattr *rta = (struct rtattr *)((char *)m + at);
  rta->rta_type = (unsigned short)type;
  rta->rta_len = (unsigned short)rta_len;
  memcpy(RTA_DATA(rta), data, len);
  m->hdr.nlmsg_len = (unsigned int)(at + RTA_ALIGN(rta_len));
  return 0;
}

void *nl_header(struct nl_msg *m) {
  return NLMSG_DATA(&m->hdr);
}

static int send_message(int fd, struct nlmsghdr *h) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  h->nlmsg_seq = next_seq++;
  for (;;) {
    ssize_t n = sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    if (n >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

/*
 * Reads answers to the request numbered `seq` until its ack (NLMSG_ERROR) or its dump's end
 * (NLMSG_DONE); every other message of it goes to `each`.
 */
static int read_answers(int fd, unsigned int seq, void (*each)(const struct nlmsghdr *, void *), void *arg) {
  static char buf[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error;
      }
      if (each != NULL) each(h, arg);
    }
  }
}

int nl_request(int fd, struct nl_msg *m) {
  int r = send_message(fd, &m->hdr);
  return r < 0 ? r : read_answers(fd, m->hdr.nlmsg_seq, NULL, NULL);
}

/* The family header a dump request of `type` carries: its first byte is the family for all three. */
static size_t dump_header_len(int type) {
  switch (type) {
  case RTM_GETLINK: return sizeof(struct ifinfomsg);
  case RTM_GETADDR: return sizeof(struct ifaddrmsg);
  default: return sizeof(struct rtmsg);
  }
}

int nl_dump(int fd, int type, unsigned char family, void (*each)(const struct nlmsghdr *, void *), void *arg) {
  struct nl_msg req;
  nl_start(&req, type, NLM_F_DUMP, dump_header_len(type));
  req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  *(unsigned char *)nl_header(&req) = family;
  int r = send_message(fd, &req.hdr);
  return r < 0 ? r : read_answers(fd, req.hdr.nlmsg_seq, each, arg);
}
