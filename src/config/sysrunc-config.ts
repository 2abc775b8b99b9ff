// sysrunc's own configuration: /etc/sysrunc/config.json (or $SYSRUNC_CONFIG), overridden by
// SYSRUNC_* environment variables. bin/sysrunc reads only the flat "runtime" member itself.
import { readFileSync } from 'node:fs';
import * as z from 'zod/mini';
import { SysruncError } from '../errors.ts';

export const DEFAULT_CONFIG_PATH = '/etc/sysrunc/config.json';
export const DEFAULT_MANAGER_SOCKET = '/run/sysrunc/mgr.sock';

const ConfigFile = z.strictObject({
  runtime: z.optional(z.string().check(z.minLength(1))),
  managerSocket: z.optional(z.string().check(z.minLength(1))),
});

export interface SysruncConfig {
  /** The real runc: a path, or a name looked up in $PATH. */
  readonly runtime: string;
  readonly managerSocket: string;
  readonly configPath: string;
}

export function loadSysruncConfig(env: NodeJS.ProcessEnv = process.env): SysruncConfig {
  const configPath = env.SYSRUNC_CONFIG ?? DEFAULT_CONFIG_PATH;
  let fromFile: z.infer<typeof ConfigFile> = {};
  let text: string | undefined;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SysruncError(`config ${configPath}: read: ${(err as Error).message}`);
    }
  }
  if (text !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new SysruncError(`config ${configPath}: invalid JSON: ${(err as Error).message}`);
    }
    const parsed = ConfigFile.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `/${issue.path.join('/')}` : '/';
      throw new SysruncError(`config ${configPath}: ${where}: ${issue?.message ?? 'invalid'}`);
    }
    fromFile = parsed.data;
  }
  return {
    runtime: env.SYSRUNC_RUNTIME || fromFile.runtime || 'runc',
    managerSocket: env.SYSRUNC_MGR_SOCKET || fromFile.managerSocket || DEFAULT_MANAGER_SOCKET,
    configPath,
  };
}
