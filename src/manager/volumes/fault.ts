// Fault points for crash tests: with SYSRUNC_TEST_FAULT=<name>[,<name>...] in its environment, the
// process kills itself with SIGKILL when it reaches a named point, exactly as a kill -9 from outside
// would stop it there. Without the variable (always, outside tests) a fault point does nothing.
const VAR = 'SYSRUNC_TEST_FAULT';

export function faultPoint(name: string): void {
  const wanted = process.env[VAR];
  if (wanted === undefined || wanted === '') return;
  if (!wanted.split(',').includes(name)) return;
  process.stderr.write(`${VAR}: killing pid ${process.pid} at ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}
