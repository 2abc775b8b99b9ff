/*
 * runc's own mount namespace for a prepared create or run (bundle-ns.c; why, in bundle-exec.c):
 * unshared, its mounts made slaves, other containers' overlays detached in it (the run base's
 * mount-ns.lock held shared meanwhile), and the prepared config bound over
 * <caller_bundle>/config.json. Returns 0, or 127 having printed why on stderr.
 */
#ifndef SYSRUNC_BUNDLE_NS_H
#define SYSRUNC_BUNDLE_NS_H

int enter_bundle_namespace(const char *prepared_config, const char *caller_bundle);

/* "sysrunc: <what> <path>: <errno's text>" on stderr; returns 127. */
int bundle_ns_fail(const char *what, const char *path);

#endif
