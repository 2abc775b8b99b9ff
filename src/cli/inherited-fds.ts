/**
 * How many fds runc hands to the container, counted from 0: stdio, the socket-activation fds when
 * $LISTEN_PID names this process (systemd's rule, which runc follows), then --preserve-fds N.
 */
export function runcInheritedFdCount(preserveFds: number, env: NodeJS.ProcessEnv = process.env): number {
  const listenFds = Number(env.LISTEN_FDS);
  const listening = env.LISTEN_PID === String(process.pid) && Number.isInteger(listenFds) && listenFds > 0;
  return 3 + (listening ? listenFds : 0) + preserveFds;
}

/** Whether socket-activation fds were passed to this very process. */
export function receivedListenFds(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LISTEN_PID === String(process.pid) && Number(env.LISTEN_FDS) > 0;
}
