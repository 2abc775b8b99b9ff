// Go `flag` package semantics, which runc's CLI (urfave/cli) inherits: `-x`, `--x`, `-x=v`,
// `--x=v`, `-x v` for value flags; booleans take `=true|false` but never a separate value;
// parsing stops at the first non-flag argument or at `--`.

export interface FlagSpec {
  /** Every accepted spelling without dashes, e.g. ['bundle', 'b']. The first is the canonical name. */
  readonly names: readonly string[];
  readonly takesValue: boolean;
}

export interface ParsedFlags {
  readonly values: ReadonlyMap<string, string | boolean>;
  readonly positionals: readonly string[];
}

export class FlagError extends Error {
  override readonly name = 'FlagError';
}

const BOOL_WORDS: Readonly<Record<string, boolean>> = {
  '1': true, t: true, T: true, true: true, TRUE: true, True: true,
  '0': false, f: false, F: false, false: false, FALSE: false, False: false,
};

export function parseFlags(args: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  for (const spec of specs) for (const name of spec.names) byName.set(name, spec);

  const values = new Map<string, string | boolean>();
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.length < 2 || !arg.startsWith('-')) break;
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body.length === 0 || body.startsWith('-') || body.startsWith('=')) {
      throw new FlagError(`bad flag syntax: ${arg}`);
    }
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    const canonical = spec.names[0] as string;
    if (spec.takesValue) {
      if (eq !== -1) {
        values.set(canonical, body.slice(eq + 1));
      } else {
        const next = args[i + 1];
        if (next === undefined) throw new FlagError(`flag needs an argument: -${name}`);
        values.set(canonical, next);
        i++;
      }
    } else if (eq === -1) {
      values.set(canonical, true);
    } else {
      const word = body.slice(eq + 1);
      const parsed = BOOL_WORDS[word];
      if (parsed === undefined) {
        throw new FlagError(`invalid boolean value "${word}" for -${name}: parse error`);
      }
      values.set(canonical, parsed);
    }
  }
  return { values, positionals: args.slice(i) };
}

export function stringFlag(parsed: ParsedFlags, name: string): string | undefined {
  const value = parsed.values.get(name);
  return typeof value === 'string' ? value : undefined;
}

export function boolFlag(parsed: ParsedFlags, name: string): boolean {
  return parsed.values.get(name) === true;
}
