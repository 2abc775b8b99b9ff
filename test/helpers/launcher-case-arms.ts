// Reads the case arms of bin/sysrunc: each arm's pattern alternatives, as written
// (`--root | -root)` -> ['--root', '-root']). The launcher's flag tables are case arms; the tests
// compare them with the grammar in src/oci/runc-grammar.ts.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LAUNCHER = fileURLToPath(new URL('../../bin/sysrunc', import.meta.url));

const ARM = /^\s*(?:case \S+ in )?([^\s|()]+(?:\s*\|\s*[^\s|()]+)*)\)/;

export function launcherCaseArms(script: string = readFileSync(LAUNCHER, 'utf8')): string[][] {
  // An arm's patterns may continue on the next line after a backslash.
  const joined = script.replace(/\\\n\s*/g, ' ');
  const arms: string[][] = [];
  for (const line of joined.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    const match = ARM.exec(line);
    if (match !== null) arms.push((match[1] as string).split(/\s*\|\s*/));
  }
  return arms;
}

/** The arms listing `alternative`, each with `prefix` taken off its alternatives. */
export function armsListing(arms: readonly string[][], alternative: string, prefix = ''): string[][] {
  return arms
    .filter((arm) => arm.includes(prefix + alternative))
    .map((arm) => arm.map((pattern) => (pattern.startsWith(prefix) ? pattern.slice(prefix.length) : pattern)));
}
