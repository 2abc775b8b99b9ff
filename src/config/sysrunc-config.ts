// sysrunc's own configuration: /etc/sysrunc/config.json (or $SYSRUNC_CONFIG), overridden by
// SYSRUNC_* environment variables. bin/sysrunc reads simple files the same way with sh builtins and
// asks the per-call binary (SYSRUNC_PRINT_CONFIG) for any other; test/unit/launcher-config.test.ts.
import { readFileSync } from 'node:fs';
import { SysruncError } from '../common/errors.ts';

export const DEFAULT_CONFIG_PATH = '/etc/sysrunc/config.json';
export const DEFAULT_MANAGER_SOCKET = '/run/sysrunc/mgr.sock';

interface ConfigFile {
  runtime?: string;
  managerSocket?: string;
}

const KEYS: readonly (keyof ConfigFile)[] = ['runtime', 'managerSocket'];

/** Checked by hand: the per-call binary reads this on every create, and a schema library costs start-up. */
function parseConfigFile(json: unknown): ConfigFile | { error: string } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { error: '/: expected an object' };
  const out: ConfigFile = {};
  for (const [key, value] of Object.entries(json)) {
    if (!(KEYS as readonly string[]).includes(key)) return { error: `/: unknown key "${key}"` };
    if (typeof value !== 'string' || value === '') return { error: `/${key}: expected a non-empty string` };
    out[key as keyof ConfigFile] = value;
  }
  return out;
}

export interface SysruncConfig {
  /** The real runc: a path, or a name looked up in $PATH. */
  readonly runtime: string;
  readonly managerSocket: string;
  readonly configPath: string;
}

export function loadSysruncConfig(env: NodeJS.ProcessEnv = process.env): SysruncConfig {
  const configPath = env.SYSRUNC_CONFIG ?? DEFAULT_CONFIG_PATH;
  let fromFile: ConfigFile = {};
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
    const parsed = parseConfigFile(json);
    if ('error' in parsed) throw new SysruncError(`config ${configPath}: ${parsed.error}`);
    fromFile = parsed;
  }
  return {
    runtime: env.SYSRUNC_RUNTIME || fromFile.runtime || 'runc',
    managerSocket: env.SYSRUNC_MGR_SOCKET || fromFile.managerSocket || DEFAULT_MANAGER_SOCKET,
    configPath,
  };
}
