/** runc's default --root. */
export const DEFAULT_RUNC_ROOT = '/run/runc';
