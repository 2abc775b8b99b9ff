// Bundles each entry point into one ESM file under dist/, so a sysrunc invocation reads one file
// instead of resolving hundreds of modules. Native (koffi) and worker-based (pino) packages stay
// external and load from node_modules.
import { build } from 'esbuild';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const entries = {
  sysrunc: 'src/cli/main.ts',
  'sysrunc-mgr': 'src/manager/main.ts',
};

// Chunk names carry content hashes: without this, every build would leave the old ones behind.
rmSync(path.join(root, 'dist', 'chunks'), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(Object.entries(entries).filter(([, file]) => existsSync(path.join(root, file)))),
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  // Subcommands load their own chunk (see src/cli/main.ts).
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  external: ['koffi', 'pino', 'thread-stream'],
  banner: { js: "import { createRequire as __sysruncCreateRequire } from 'node:module'; const require = __sysruncCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
console.log(`built ${Object.keys(entries).join(', ')} into dist/`);
