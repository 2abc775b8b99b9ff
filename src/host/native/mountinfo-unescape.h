/*
 * /proc/<pid>/mountinfo escapes space, tab, newline and backslash in paths as \ooo. Shared by the
 * C programs that read mountinfo (runtime-call/native/bundle-ns.c, manager/native/delegate-cgroups.c).
 */
#ifndef SYSRUNC_MOUNTINFO_UNESCAPE_H
#define SYSRUNC_MOUNTINFO_UNESCAPE_H

/* Undoes mountinfo's \ooo escapes in place. */
static inline void mountinfo_unescape(char *s) {
  char *out = s;
  for (char *in = s; *in != '\0'; in++) {
    if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
      *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
      in += 3;
    } else {
      *out++ = *in;
    }
  }
  *out = '\0';
}

#endif
