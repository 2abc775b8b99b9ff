// /etc/docker/daemon.json with sysrunc's runtime merged in (or taken out): every other key and
// runtime is kept. Pure: text in, text out.

export class EngineConfigError extends Error {
  override readonly name = 'EngineConfigError';
}

type Json = Record<string, unknown>;

function parse(file: string, text: string | undefined): Json {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EngineConfigError(`${file} is not valid JSON (${err instanceof Error ? err.message : String(err)}): fix it first; nothing was changed`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EngineConfigError(`${file} is not a JSON object: fix it first; nothing was changed`);
  return value as Json;
}

function runtimesOf(file: string, config: Json): Json | undefined {
  const runtimes = config['runtimes'];
  if (runtimes === undefined) return undefined;
  if (typeof runtimes !== 'object' || runtimes === null || Array.isArray(runtimes)) throw new EngineConfigError(`${file}: "runtimes" is not an object: fix it first; nothing was changed`);
  return runtimes as Json;
}

/** The file with runtimes.<name> = { path }; undefined when it is there already. */
export function addDockerRuntime(file: string, text: string | undefined, name: string, runtimePath: string): string | undefined {
  const config = parse(file, text);
  const runtimes = runtimesOf(file, config) ?? {};
  const existing = runtimes[name] as { path?: unknown } | undefined;
  if (existing !== undefined) {
    if (typeof existing === 'object' && existing !== null && existing.path === runtimePath) return undefined;
    throw new EngineConfigError(`${file}: a runtime "${name}" is there already with another definition (${JSON.stringify(existing)}): remove it first; nothing was changed`);
  }
  return `${JSON.stringify({ ...config, runtimes: { ...runtimes, [name]: { path: runtimePath } } }, null, 2)}\n`;
}

/** The file without runtimes.<name> (and without "runtimes" once empty); undefined when it is not there. */
export function removeDockerRuntime(file: string, text: string | undefined, name: string): string | undefined {
  const config = parse(file, text);
  const runtimes = runtimesOf(file, config);
  if (runtimes?.[name] === undefined) return undefined;
  const { [name]: _removed, ...rest } = runtimes;
  const { runtimes: _all, ...others } = config;
  return `${JSON.stringify(Object.keys(rest).length === 0 ? others : { ...others, runtimes: rest }, null, 2)}\n`;
}

/** What dockerd will read: valid JSON whose runtimes.<name>.path is the runtime. */
export function validateDockerConfig(file: string, text: string, name: string, runtimePath: string | undefined): void {
  const runtimes = runtimesOf(file, parse(file, text));
  const path = (runtimes?.[name] as { path?: unknown } | undefined)?.path;
  if (runtimePath !== undefined && path !== runtimePath) throw new EngineConfigError(`${file}: the result has no runtime "${name}" with path ${runtimePath}`);
  if (runtimePath === undefined && runtimes?.[name] !== undefined) throw new EngineConfigError(`${file}: the result still has runtime "${name}"`);
}
