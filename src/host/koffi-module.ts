// Where koffi (the C FFI) comes from. Under Node it is the npm package in node_modules. A binary
// compiled with Bun carries no node_modules: its entry (scripts/compile-binaries.mjs) embeds koffi's
// native addon and provides it here before anything binds libc. Only load, func, errno and alloc
// are used, which the addon itself exports (the npm package's JS only adds deprecation wrappers).
import { createRequire } from 'node:module';
import type Koffi from 'koffi';

let provider: (() => typeof Koffi) | undefined;
let koffi: typeof Koffi | undefined;

/** Called once by a compiled binary's entry, before any libc binding. */
export function provideKoffi(load: () => typeof Koffi): void {
  provider = load;
}

export function loadKoffi(): typeof Koffi {
  koffi ??= provider !== undefined ? provider() : (createRequire(import.meta.url)('koffi') as typeof Koffi);
  return koffi;
}
