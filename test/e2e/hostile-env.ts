// What a hostile image puts in its ENV (test/e2e/hostile-image*.test.ts).

/** Every SYSRUNC_* setting at its most permissive value, plus one that is no setting at all. */
export const HOSTILE_ENV: Readonly<Record<string, string>> = {
  SYSRUNC_USERNS_SIZE: '16777216',
  SYSRUNC_SYSCONT: 'false',
  SYSRUNC_CAPABILITIES: 'all',
  SYSRUNC_SYSTEMD: 'true',
  SYSRUNC_STORE_VOLUMES: 'true',
  SYSRUNC_OWNERSHIP: 'chown',
  SYSRUNC_BIND_OWNERSHIP: 'host-root',
  SYSRUNC_BOGUS: '1',
};
/** The ones the container's environment may not choose: each must be ignored with a warning. */
export const WIDENING_ENV = ['SYSRUNC_USERNS_SIZE', 'SYSRUNC_SYSCONT', 'SYSRUNC_CAPABILITIES', 'SYSRUNC_OWNERSHIP', 'SYSRUNC_BIND_OWNERSHIP', 'SYSRUNC_BOGUS'];
