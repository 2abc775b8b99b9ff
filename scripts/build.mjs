// Bundles each entry point into one ESM file under dist/, so a sysrunc invocation reads one file
// instead of resolving hundreds of modules. Native (koffi) and worker-based (pino) packages stay
// external and load from node_modules.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const entries = {
  sysrunc: 'src/runtime-call/main.ts',
  'sysrunc-mgr': 'src/manager/main.ts',
  'sysrunc-depotd': 'src/depot/main.ts',
  'sysrunc-ctl': 'src/sysrunc-ctl/main.ts',
  'sysrunc-tenantd': 'src/tenants/main.ts',
};

// Chunk names carry content hashes: without this, every build would leave the old ones behind.
rmSync(path.join(root, 'dist', 'chunks'), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(Object.entries(entries).filter(([, file]) => existsSync(path.join(root, file)))),
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  // Subcommands load their own chunk (see src/runtime-call/main.ts).
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

// exec-grant.c's capability table comes from the TypeScript list (src/oci/capabilities.ts), and the
// C launcher's flag tables from runc's grammar (src/oci/runc-grammar.ts): one list each, written
// here as headers into the build dir, never into src/.
async function generatorModule(entry) {
  const bundled = await build({ absWorkingDir: root, entryPoints: [entry], bundle: true, write: false, platform: 'node', format: 'esm', logLevel: 'warning' });
  return import(`data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].contents).toString('base64')}`);
}
const { CAPABILITY_NAMES_HEADER, capabilityNamesHeader } = await generatorModule('src/runtime-call/native/capability-names-header.ts');
const { RUNC_GRAMMAR_HEADER, runcGrammarHeader } = await generatorModule('src/runtime-call/native/runc-grammar-header.ts');
const nativeInclude = path.join(root, 'dist', 'include');
mkdirSync(nativeInclude, { recursive: true });
writeFileSync(path.join(nativeInclude, CAPABILITY_NAMES_HEADER), capabilityNamesHeader());
writeFileSync(path.join(nativeInclude, RUNC_GRAMMAR_HEADER), runcGrammarHeader());

// The depot's keep-alive init and per-process supervisor: small static C programs (no libc at run
// time inside the container; a few hundred KB resident per supervisor).
const cc = process.env.CC ?? 'cc';
// And the create path's sysrunc-bundle-exec (runc in a mount namespace where the caller's bundle
// holds the prepared config; without it, runc runs the prepared bundle and state.bundle names it),
// exec's capability grant without a runtime start (sysrunc-exec-grant), create/run's and the
// synchronous delete's request to the manager without one (sysrunc-prepare-call,
// sysrunc-delete-call: one client module, manager-call.c with json.c; runc's mount namespace, bundle-ns.c, is
// bundle-exec's and prepare-call's), a system container's mount listener
// (sysrunc-mount-listener), and the hooks sysrunc adds: a system container's cgroup delegation
// under the systemd driver (sysrunc-delegate-cgroups) and a pod sandbox's network
// (sysrunc-adopt-netns, with rtnetlink.c). Built for the compiler's default target (baseline x86-64 on amd64: no SIGILL on
// old CPUs). Each with what a machine without it gets.
const managerCall = ['src/runtime-call/native/manager-call.c', 'src/runtime-call/native/json.c'];
const bundleNs = 'src/runtime-call/native/bundle-ns.c';
const native = (file) => `src/runtime-call/native/${file}`;
const execGrant = native('exec-grant.c');
const prepareHandOver = native('prepare-hand-over.c');
const deleteRelease = native('delete-release.c');
const hookCommon = 'src/manager/native/hook-common.c';
const nativePrograms = [
  // The runtime path engines are given (create, start, state, kill, delete, exec without a shell):
  // launcher.c says which calls it hands to bin/sysrunc.
  ['sysrunc', native('launcher.c'), 'register bin/sysrunc with engines instead', native('launcher-argv.c'), native('launcher-config.c'), prepareHandOver, deleteRelease, execGrant, ...managerCall, bundleNs],
  ['sysrunc-depot-init', 'src/depot/native/init.c', 'the depot needs it'],
  ['sysrunc-depot-supervise', 'src/depot/native/supervise.c', 'the depot needs it'],
  ['sysrunc-bundle-exec', 'src/runtime-call/native/bundle-exec.c', 'state.bundle will name the prepared bundle', bundleNs],
  ['sysrunc-exec-grant', native('exec-grant-main.c'), 'exec grants capabilities through the per-call binary', execGrant],
  ['sysrunc-prepare-call', native('prepare-call.c'), 'create and run go through the per-call binary', prepareHandOver, ...managerCall, bundleNs],
  ['sysrunc-delete-call', native('delete-call.c'), 'a synchronous delete goes through the per-call binary', deleteRelease, ...managerCall],
  ['sysrunc-mount-listener', 'src/manager/native/mount-listener.c', "containers inside system containers see the kernel's /proc figures"],
  ['sysrunc-delegate-cgroups', 'src/manager/native/delegate-cgroups.c', "a system container under runc's systemd cgroup driver gets the shell hook bin/sysrunc-delegate-cgroups (~35 ms more per create on cgroup v1)", hookCommon],
  ['sysrunc-adopt-netns', 'src/manager/native/adopt-netns.c', "a pod's sandbox gets the shell hook bin/sysrunc-adopt-netns (~100 ms more per pod)", 'src/manager/native/rtnetlink.c', hookCommon],
];
for (const [name, source, without, ...modules] of nativePrograms) {
  const out = path.join(root, 'dist', name);
  const r = spawnSync(cc, ['-static', '-Os', '-s', '-Wall', '-Wextra', '-I', nativeInclude, '-o', `${out}.tmp`, source, ...modules], { cwd: root, encoding: 'utf8' });
  if (r.status === 0) {
    renameSync(`${out}.tmp`, out);
  } else {
    // No stale binary passes for the sources.
    rmSync(out, { force: true });
    console.warn(`not built: dist/${name} (${cc}: ${(r.stderr || String(r.error)).trim().split('\n').slice(-2).join(' ')}); ${without} (apt-get install gcc libc6-dev)`);
  }
}

// bin/sysrunc prints it for --version without starting anything.
const version = /SYSRUNC_VERSION = '([^']+)'/.exec(readFileSync(path.join(root, 'src', 'common', 'version.ts'), 'utf8'))?.[1] ?? 'unknown';
writeFileSync(path.join(root, 'dist', 'VERSION'), `${version}\n`);

// The per-call binary, compiled: Node's own start-up (~60 ms) would be most of every create.
// Bun comes from npm (devDependency "bun", which ships the platform's binary). Where it cannot
// run, bin/sysrunc falls back to dist/sysrunc.mjs under Node.
const bun = path.join(root, 'node_modules', '.bin', 'bun');
const call = path.join(root, 'dist', 'sysrunc-call');
// Bun's x64 "baseline" build (optional dependency @oven/bun-linux-x64-baseline) needs x86-64-v2
// (SSE4.2, POPCNT; Nehalem, 2008) where the default one is built for AVX2 CPUs; compiling for that
// target would download it, so compile against the local copy. Older CPUs (qemu's default qemu64
// model) fall back to Node in bin/sysrunc.
const baseline = path.join(root, 'node_modules', '@oven', 'bun-linux-x64-baseline', 'bin', 'bun');
const target = process.arch === 'x64' && process.platform === 'linux' && existsSync(baseline)
  ? ['--target=bun-linux-x64-baseline', `--compile-executable-path=${baseline}`]
  : ['--target=bun'];
rmSync(call, { force: true });
const compiled = existsSync(bun)
  ? spawnSync(
      bun,
      [
        'build', '--compile', '--minify', ...target, '--sourcemap=none', '--external', 'koffi',
        // Precompiled bytecode: parsing and compiling the JS was ~18 ms of each call's ~24.
        '--bytecode',
        // A standalone binary that runs in the caller's working directory (runc's: the bundle)
        // must not pick up a .env or bunfig.toml from there.
        '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig',
        'src/runtime-call/main.ts', '--outfile', call,
      ],
      { cwd: root, encoding: 'utf8' },
    )
  : undefined;
if (compiled?.status === 0) {
  console.log(`built ${Object.keys(entries).join(', ')} and sysrunc-call (${target[0].slice('--target='.length)}) into dist/`);
} else {
  const why = compiled === undefined ? `${bun} is missing` : (compiled.stderr || compiled.stdout || String(compiled.error)).trim().split('\n').pop();
  console.warn(`built ${Object.keys(entries).join(', ')} into dist/; no compiled sysrunc-call (${why}): bin/sysrunc runs dist/sysrunc.mjs under Node`);
}
