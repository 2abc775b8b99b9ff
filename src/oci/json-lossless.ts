// config.json may carry uint64 values above 2^53 (seccomp argument values, Docker's memory
// swappiness of 2^64-1). JSON.parse rounds them, and runc refuses the rounded 18446744073709552000
// as a uint64. So the integers that would lose precision are remembered by their rounded text and
// written back exactly.

export interface LosslessJson {
  readonly value: unknown;
  /** JSON text of `value` (possibly changed) with every big integer restored exactly. */
  stringify(value: unknown): string;
}

export class BigIntegerConflictError extends Error {
  override readonly name = 'BigIntegerConflictError';
}

export function parseLossless(text: string): LosslessJson {
  const restore = new Map<string, string>();
  forEachNumberToken(text, (token) => {
    if (!/^-?\d+$/.test(token) || Number.isSafeInteger(Number(token))) return token;
    const rounded = JSON.stringify(Number(token));
    const previous = restore.get(rounded);
    if (previous !== undefined && previous !== token) {
      throw new BigIntegerConflictError(`integers ${previous} and ${token} cannot both be kept exactly`);
    }
    restore.set(rounded, token);
    return token;
  });
  const value: unknown = JSON.parse(text);
  return {
    value,
    stringify(next: unknown): string {
      const out = JSON.stringify(next);
      return restore.size === 0 ? out : forEachNumberToken(out, (token) => restore.get(token) ?? token);
    },
  };
}

/** Calls `map` on every number token outside strings and returns the text with the replacements. */
function forEachNumberToken(text: string, map: (token: string) => string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9eE.+-]/.test(text[j] as string)) j++;
      out += map(text.slice(i, j));
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
