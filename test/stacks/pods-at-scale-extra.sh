# shellcheck shell=sh
# Issue 24 on a cgroup v2 stack: bench scenario (q)'s pods at scale in the guest
# (test/stacks/pods-at-scale.ts), handler runc vs sysrunc interleaved. On the host:
#   SYSRUNC_STACKS_EXTRA=test/stacks/pods-at-scale-extra.sh SYSRUNC_STACKS_ONLY=pods-at-scale \
#     SYSRUNC_STACKS_SMP=1 SYSRUNC_STACKS_MEM=3G scripts/test-stacks.sh sid
# Pods per batch and rounds are set here (10 pods, 2 rounds): a batch of 30 takes minutes under
# emulation.
# Every batch's line goes to the console log; the result line to the table.
# Sourced by scripts/stacks/guest-checks.sh (it defines check, $stack and $console_tty).
# shellcheck disable=SC2154 # $stack, $console_tty: guest-checks.sh's
check_pods_at_scale() {
	out=/tmp/pods-at-scale.out
	(cd "$stack/sysrunc" && node --import tsx test/stacks/pods-at-scale.ts "$stack/oci/pause.tar" "$stack/oci/bb.tar" 10 2) >"$out" 2>&1
	status=$?
	sed 's/^/pods-at-scale: /' "$out" >"$console_tty"
	tail -1 "$out"
	return "$status"
}
check pods-at-scale check_pods_at_scale
