# shellcheck shell=sh
# Issue 24 on a cgroup v2 stack: bench scenario (q)'s pods at scale in the guest
# (test/stacks/pods-at-scale.ts), handler runc vs sysrunc interleaved. On the host:
#   SYSRUNC_STACKS_EXTRA=test/stacks/pods-at-scale-extra.sh SYSRUNC_STACKS_ONLY=pods-at-scale \
#     SYSRUNC_STACKS_SMP=1 SYSRUNC_STACKS_MEM=3G scripts/test-stacks.sh sid
# Fewer pods per batch than the host's 30 (emulation is 10-50x slower): PODS_AT_SCALE below.
# Each batch's line goes to the console log as it comes; the summary line to the table.
# Sourced by scripts/stacks/guest-checks.sh (it defines check, $stack and $console_tty).
# shellcheck disable=SC2154 # $stack, $console_tty: guest-checks.sh's
PODS_AT_SCALE='6 2' # pods per batch, rounds (each round: a runc and a sysrunc batch)
check_pods_at_scale() {
	out=/tmp/pods-at-scale.out
	# shellcheck disable=SC2086 # two numbers
	(cd "$stack/sysrunc" && node --import tsx test/stacks/pods-at-scale.ts "$stack/oci/pause.tar" "$stack/oci/bb.tar" $PODS_AT_SCALE; echo "exit $?") 2>&1 |
		tee "$out" | sed 's/^/pods-at-scale: /' >"$console_tty"
	grep -v '^exit ' "$out" | tail -1
	[ "$(tail -1 "$out")" = "exit 0" ]
}
check pods-at-scale check_pods_at_scale
