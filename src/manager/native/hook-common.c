/* hook-common.h's functions. */
#define _GNU_SOURCE
#include "hook-common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", hook_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

char *read_all(int fd) {
  size_t cap = 8192, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return NULL;
  for (;;) {
    if (len + 1 >= cap) {
      char *grown = realloc(buf, cap *= 2);
      if (grown == NULL) return NULL;
      buf = grown;
    }
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return NULL;
    if (n == 0) break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  return buf;
}

pid_t state_pid(void) {
  char *state = read_all(0);
  if (state == NULL) die("reading the container state on stdin: %s (errno %d)", strerror(errno), errno);
  const char *at = strstr(state, "\"pid\":");
  long pid = at == NULL ? 0 : strtol(at + 6, NULL, 10);
  free(state);
  if (pid <= 0) die("no pid in the container state on stdin");
  return (pid_t)pid;
}
