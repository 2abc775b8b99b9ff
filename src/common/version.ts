export const SYSRUNC_VERSION = '0.1.0';
