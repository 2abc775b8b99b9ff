// containerd's config.toml with sysrunc's CRI runtime handler added (or taken out). Pure: text in,
// text out; paths are the node's (the I/O layer maps them under --root).
//   version 2 (containerd 1.6, 1.7): the handler's tables appended to config.toml between marker
//     lines. Not an `imports` drop-in: 1.x replaces a whole plugin section with an imported one,
//     which would drop every other CRI setting of the file.
//   version 3 (containerd 2.x, which merges imported plugin settings key by key): a drop-in file,
//     imported by config.toml (an `imports` line added, or put in place of an empty `imports = []`).
//     A file whose own `imports` lists other files and not the drop-in gets the tables appended
//     instead, as for version 2.
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { EngineConfigError } from './docker-config.ts';

export type ConfigVersion = 2 | 3;

const CRI_RUNTIMES: Record<ConfigVersion, string[]> = {
  2: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  3: ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
};
const BEGIN = '# BEGIN sysrunc: added by `sysrunc-ctl install containerd`, removed by `sysrunc-ctl uninstall containerd`';
const BEGIN_AFTER_NEWLINE = `${BEGIN} (it added the newline before this line)`;
const END = '# END sysrunc';
const IMPORT_MARK = '# added by sysrunc-ctl install containerd';
const IN_PLACE_OF = ', in place of: ';

export interface ContainerdPlan {
  /** config.toml's new text; undefined: unchanged. */
  readonly main: string | undefined;
  /** The drop-in (version 3): its node path and text. */
  readonly dropIn?: { readonly path: string; readonly text: string };
}

function tables(version: ConfigVersion, name: string, runtimePath: string): string {
  const key = CRI_RUNTIMES[version].map((k) => (k.includes('.') ? `"${k}"` : k)).join('.');
  return [
    `[${key}.${name}]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `  [${key}.${name}.options]`,
    `    BinaryName = ${JSON.stringify(runtimePath)}`,
    '',
  ].join('\n');
}

function parse(file: string, text: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new EngineConfigError(`${file} is not valid TOML (${first}): fix it first; nothing was changed`);
  }
}

function dig(o: unknown, keys: readonly string[]): unknown {
  let v = o;
  for (const k of keys) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** The version a file declares (containerd reads a file without `version` as version 1). */
export function declaredVersion(file: string, text: string): ConfigVersion {
  const v = parse(file, text)['version'];
  if (v === 2 || v === 3) return v;
  throw new EngineConfigError(`${file}: config version ${v === undefined ? '1 (no version key)' : String(v)} is not supported (2: containerd 1.6/1.7, 3: containerd 2.x): migrate it with \`containerd config migrate\` first`);
}

function globMatches(pattern: string, file: string): boolean {
  const re = pattern.split('/').map((seg) => seg.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'));
  return new RegExp(`^${re.join('/')}$`).test(file);
}

function appendBlock(text: string, block: string): string {
  if (text === '' || text.endsWith('\n')) return `${text}${BEGIN}\n${block}${END}\n`;
  return `${text}\n${BEGIN_AFTER_NEWLINE}\n${block}${END}\n`;
}

/** What `install containerd` writes; `text` undefined: no config.toml yet. */
export function planContainerdInstall(file: string, text: string | undefined, version: ConfigVersion, name: string, runtimePath: string): ContainerdPlan {
  const dropInPath = path.join(path.dirname(file), 'conf.d', `${name}.toml`);
  const dropIn = { path: dropInPath, text: `# sysrunc's CRI runtime handler, imported by ${file} (sysrunc-ctl install containerd).\nversion = 3\n\n${tables(3, name, runtimePath)}` };
  if (text === undefined) {
    if (version === 2) return { main: appendBlock('version = 2\n', tables(2, name, runtimePath)) };
    return { main: `version = 3\nimports = [${JSON.stringify(dropInPath)}] ${IMPORT_MARK}\n`, dropIn };
  }
  const config = parse(file, text);
  const have = dig(config, [...CRI_RUNTIMES[version], name]);
  if (have !== undefined) {
    if (dig(have, ['options', 'BinaryName']) === runtimePath) return { main: undefined };
    throw new EngineConfigError(`${file}: a runtime handler "${name}" is there already with another definition: remove it first; nothing was changed`);
  }
  if (version === 2) return { main: appendBlock(text, tables(2, name, runtimePath)) };
  const imports = config['imports'];
  if (imports === undefined) {
    // A top-level key goes before the first table: right after the version line.
    const lines = text.split('\n');
    const at = lines.findIndex((l) => /^\s*version\s*=/.test(l));
    lines.splice(at + 1, 0, `imports = [${JSON.stringify(dropInPath)}] ${IMPORT_MARK}`);
    return { main: lines.join('\n'), dropIn };
  }
  if (Array.isArray(imports) && imports.some((p) => typeof p === 'string' && globMatches(p, dropInPath))) return { main: undefined, dropIn };
  // `imports = []`: what `containerd config default` and `config migrate` write. That line gives
  // way to the drop-in's import, and says what it was (uninstall puts it back).
  const emptyImports = Array.isArray(imports) && imports.length === 0 ? text.split('\n').findIndex((l) => /^imports\s*=\s*\[\s*\]\s*$/.test(l)) : -1;
  if (emptyImports >= 0) {
    const lines = text.split('\n');
    lines[emptyImports] = `imports = [${JSON.stringify(dropInPath)}] ${IMPORT_MARK}${IN_PLACE_OF}${lines[emptyImports] ?? ''}`;
    return { main: lines.join('\n'), dropIn };
  }
  return { main: appendBlock(text, tables(3, name, runtimePath)) };
}

/** config.toml without what install added (marker block, imports line); undefined: nothing to take out. */
export function planContainerdUninstall(text: string): string | undefined {
  let out = text;
  const lines = out.split('\n');
  const importLine = lines.findIndex((l) => l.endsWith(IMPORT_MARK) && /^imports = /.test(l));
  const replacedLine = lines.findIndex((l) => /^imports = /.test(l) && l.includes(`${IMPORT_MARK}${IN_PLACE_OF}`));
  if (importLine >= 0) {
    lines.splice(importLine, 1);
    out = lines.join('\n');
  } else if (replacedLine >= 0) {
    const line = lines[replacedLine] ?? '';
    lines[replacedLine] = line.slice(line.indexOf(IN_PLACE_OF) + IN_PLACE_OF.length);
    out = lines.join('\n');
  }
  for (const [begin, extra] of [[`${BEGIN_AFTER_NEWLINE}\n`, 1], [`${BEGIN}\n`, 0]] as const) {
    const start = out.indexOf(begin);
    if (start < 0) continue;
    const end = out.indexOf(`${END}\n`, start);
    if (end < 0) throw new EngineConfigError(`sysrunc's block in the config has no "${END}" line: remove it by hand`);
    out = out.slice(0, start - extra) + out.slice(end + END.length + 1);
    break;
  }
  return out === text ? undefined : out;
}

/** The handler as containerd will see it: in the file itself or in the drop-in. */
export function validateContainerdPlan(file: string, main: string, dropIn: string | undefined, version: ConfigVersion, name: string, runtimePath: string): void {
  const where = dropIn === undefined ? parse(file, main) : parse(`${path.dirname(file)}/conf.d/${name}.toml`, dropIn);
  if (declaredVersion(file, main) !== version) throw new EngineConfigError(`${file}: the result does not declare version ${version}`);
  if (dig(where, [...CRI_RUNTIMES[version], name, 'options', 'BinaryName']) !== runtimePath) throw new EngineConfigError(`${file}: the result has no runtime handler "${name}" for ${runtimePath}`);
}
