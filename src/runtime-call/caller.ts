/**
 * The process that becomes runc: bin/sysrunc, which runs this binary (from a subshell, for
 * create) and then execs runc with its own pid. It says which pid that is; run directly, the parent.
 */
export function callerPid(env: NodeJS.ProcessEnv = process.env): number {
  const pid = Number(env.SYSRUNC_CALLER_PID);
  return Number.isInteger(pid) && pid > 0 ? pid : process.ppid;
}
