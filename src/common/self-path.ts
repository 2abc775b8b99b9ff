// Where this install of sysrunc is (its top: bin/, dist/), for an entry point that looks for its
// siblings (bin/sysrunc, dist/sysrunc-depot-init...). Under Node the entry's own file is
// <top>/dist/<name>.mjs (or <top>/src/.../main.ts under tsx). A Bun-compiled binary's modules live
// in its embedded file system (/$bunfs/...): there the program's path, which src/multicall.ts
// puts in process.argv[1], is <top>/dist/<name>.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function isCompiledModule(moduleUrl: string): boolean {
  return moduleUrl.includes('/$bunfs/') || moduleUrl.includes('/%24bunfs/');
}

export function installTop(moduleUrl: string): string {
  const file = isCompiledModule(moduleUrl) ? (process.argv[1] ?? process.execPath) : fileURLToPath(moduleUrl);
  return path.dirname(path.dirname(file));
}
