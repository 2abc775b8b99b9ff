#!/usr/bin/env node
// Generates src/oci/spec-types.generated.ts from the OCI runtime-spec JSON schema.
//
//   node scripts/gen-spec.mjs           rewrite the generated file
//   node scripts/gen-spec.mjs --check   exit 1 (one line on stderr) if the committed file is stale
//
// The schema is read from ../shared/oci-runtime-spec-v1.3.0/schema (override: SYSRUNC_SPEC_SCHEMA_DIR).
// This module also exports the schema loader used by scripts/gen-validators.mjs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const typesOut = path.join(repoRoot, 'src/oci/spec-types.generated.ts');

export function schemaDir() {
  return path.resolve(
    process.env.SYSRUNC_SPEC_SCHEMA_DIR ?? path.join(repoRoot, '../shared/oci-runtime-spec-v1.3.0/schema'),
  );
}

const platformPrefix = {
  linux: 'Linux',
  windows: 'Windows',
  solaris: 'Solaris',
  vm: 'VM',
  zos: 'ZOS',
  freebsd: 'FreeBSD',
};

// Type names for inline (anonymous) objects of the schema, keyed by "file#json-pointer".
const inlineTitles = {
  'config-schema.json#/properties/hooks': 'Hooks',
  'config-schema.json#/properties/root': 'Root',
  'config-schema.json#/properties/process': 'Process',
  'config-schema.json#/properties/process/properties/consoleSize': 'ConsoleSize',
  'config-schema.json#/properties/process/properties/user': 'User',
  'config-schema.json#/properties/process/properties/capabilities': 'Capabilities',
  'config-schema.json#/properties/process/properties/ioPriority': 'IOPriority',
  'config-schema.json#/properties/process/properties/scheduler': 'Scheduler',
  'config-schema.json#/properties/process/properties/rlimits/items': 'POSIXRlimit',
  'config-schema.json#/properties/process/properties/execCPUAffinity': 'CPUAffinity',
  'state-schema.json#/properties/status': 'ContainerStatus',
  'config-linux.json#/linux/properties/resources': 'LinuxResources',
  'config-linux.json#/linux/properties/resources/properties/pids': 'LinuxPids',
  'config-linux.json#/linux/properties/resources/properties/blockIO': 'LinuxBlockIO',
  'config-linux.json#/linux/properties/resources/properties/cpu': 'LinuxCPU',
  'config-linux.json#/linux/properties/resources/properties/hugepageLimits/items': 'LinuxHugepageLimit',
  'config-linux.json#/linux/properties/resources/properties/memory': 'LinuxMemory',
  'config-linux.json#/linux/properties/resources/properties/network': 'LinuxNetwork',
  'config-linux.json#/linux/properties/seccomp': 'Seccomp',
  'config-linux.json#/linux/properties/intelRdt': 'LinuxIntelRdt',
  'config-linux.json#/linux/properties/memoryPolicy': 'LinuxMemoryPolicy',
  'config-linux.json#/linux/properties/timeOffsets': 'LinuxTimeOffsets',
};

// Names for definitions whose schema name is unclear or clashes with a TypeScript-side name.
const definitionNames = {
  'defs-linux.json#/definitions/NamespaceReference': 'Namespace',
  'defs-linux.json#/definitions/Syscall': 'SeccompSyscall',
  'defs-linux.json#/definitions/SyscallArg': 'SeccompSyscallArg',
  'defs-linux.json#/definitions/Device': 'LinuxDevice',
  'defs-linux.json#/definitions/DeviceCgroup': 'LinuxDeviceCgroup',
  'defs-linux.json#/definitions/TimeOffsets': 'LinuxTimeOffset',
};

function parseRef(ref, currentFile) {
  const hash = ref.indexOf('#');
  const file = hash === -1 ? ref : ref.slice(0, hash);
  let pointer = hash === -1 ? '' : ref.slice(hash + 1);
  // The 1.3.0 schema contains "#definitions/uint32" (missing slash after '#').
  if (pointer !== '' && !pointer.startsWith('/')) pointer = `/${pointer}`;
  return { file: file === '' ? currentFile : path.posix.normalize(file), pointer };
}

function lookup(doc, pointer, where) {
  let node = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) {
      throw new Error(`unresolvable $ref ${where}`);
    }
    node = node[key];
  }
  return node;
}

function nameFor(file, pointer) {
  const key = `${file}#${pointer}`;
  if (definitionNames[key]) return definitionNames[key];
  if (file === 'state-schema.json' && pointer === '') return 'State';
  const config = /^config-([a-z]+)\.json$/.exec(file);
  if (config && pointer === `/${config[1]}`) return platformPrefix[config[1]] ?? config[1];
  const def = /^\/definitions\/([^/]+)$/.exec(pointer);
  if (file === 'defs.json' && def) return def[1];
  const defsPlatform = /^defs-([a-z]+)\.json$/.exec(file);
  if (defsPlatform && def) {
    const prefix = defsPlatform[1] === 'linux' ? '' : platformPrefix[defsPlatform[1]] ?? defsPlatform[1];
    return prefix + def[1];
  }
  throw new Error(`no type name rule for $ref target ${key}`);
}

// Objects, enums and allOf compositions become named definitions (TypeScript interfaces/unions);
// primitives and plain arrays (uint32, FilePath, ArrayOfStrings, ...) are inlined at each use.
function isNamedShape(schema) {
  return schema.type === 'object' || Array.isArray(schema.enum) || schema.allOf !== undefined;
}

/**
 * Reads config-schema.json and state-schema.json plus every file they reference and returns one
 * self-contained draft-07 schema: the root validates a config (Spec), every named shape (including
 * State) lives under `definitions` and is referenced as "#/definitions/<Name>", and primitive
 * definitions are inlined. Malformed refs ("#definitions/uint32") are normalized, keywords next to
 * a $ref are dropped (draft-04 ignores them), and `$schema: draft-04` is dropped (the schema uses
 * nothing draft-04-specific, and ajv 8 does not ship a draft-04 meta-schema).
 */
export function loadBundledSchema(dir = schemaDir()) {
  const files = new Map();
  const readSchemaFile = (file) => {
    if (!files.has(file)) {
      const full = path.join(dir, file);
      if (!existsSync(full)) throw new Error(`schema file not found: ${full} (set SYSRUNC_SPEC_SCHEMA_DIR)`);
      files.set(file, JSON.parse(readFileSync(full, 'utf8')));
    }
    return files.get(file);
  };

  const definitions = {};
  const namedTargets = new Map(); // "file#pointer" -> definition name
  const resolving = new Set();

  const resolveRef = (file, pointer, where) => {
    const key = `${file}#${pointer}`;
    const known = namedTargets.get(key);
    if (known !== undefined) return { $ref: `#/definitions/${known}` };
    if (resolving.has(key)) throw new Error(`recursive $ref ${where}`);
    resolving.add(key);
    try {
      const target = lookup(readSchemaFile(file), pointer, where);
      if (typeof target.$ref === 'string') {
        // An alias such as "UID": {"$ref": "#/definitions/uint32"}: follow it.
        const next = parseRef(target.$ref, file);
        const resolved = resolveRef(next.file, next.pointer, `"${target.$ref}" in ${key}`);
        return resolved.$ref || !target.description ? resolved : { ...resolved, description: target.description };
      }
      if (!isNamedShape(target)) return rewrite(target, file, pointer);
      const name = nameFor(file, pointer);
      if (Object.hasOwn(definitions, name)) throw new Error(`type name clash: ${name} (${key})`);
      namedTargets.set(key, name);
      definitions[name] = {}; // reserve the slot so the output order is the order of first use
      definitions[name] = { title: name, ...rewrite(target, file, pointer) };
      return { $ref: `#/definitions/${name}` };
    } finally {
      resolving.delete(key);
    }
  };

  const rewrite = (node, file, pointer) => {
    if (Array.isArray(node)) return node.map((item, i) => rewrite(item, file, `${pointer}/${i}`));
    if (node === null || typeof node !== 'object') return node;
    if (typeof node.$ref === 'string') {
      const target = parseRef(node.$ref, file);
      const resolved = resolveRef(target.file, target.pointer, `"${node.$ref}" in ${file}#${pointer}`);
      if (resolved.$ref || !node.description) return resolved;
      return { ...resolved, description: node.description };
    }
    const out = {};
    const title = inlineTitles[`${file}#${pointer}`];
    if (title) out.title = title;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$schema') continue;
      out[key] = rewrite(value, file, `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    }
    return out;
  };

  const spec = rewrite(readSchemaFile('config-schema.json'), 'config-schema.json', '');
  const state = resolveRef('state-schema.json', '', 'state-schema.json');
  if (!state.$ref) throw new Error('state-schema.json is not an object schema');
  return { title: 'Spec', ...spec, definitions };
}

async function generateTypes() {
  const { compile } = await import('json-schema-to-typescript');
  const schema = loadBundledSchema();
  const ts = await compile(schema, 'Spec', {
    bannerComment: [
      '// Generated by scripts/gen-spec.mjs from the OCI runtime-spec v1.3.0 JSON schema',
      '// (config-schema.json, state-schema.json and the files they reference). Do not edit;',
      '// regenerate with `node scripts/gen-spec.mjs`. Import types from ./spec.ts instead of this file.',
    ].join('\n'),
    additionalProperties: false,
    unreachableDefinitions: true,
    declareExternallyReferenced: true,
    format: true,
    ignoreMinAndMaxItems: true,
    style: { singleQuote: true, printWidth: 110 },
  });
  return stripReferencedByNotes(ts);
}

// json-schema-to-typescript documents every definition with "This interface was referenced by
// `Spec`'s JSON-Schema via the `definition` ..."; that is noise here (State is not part of Spec).
function stripReferencedByNotes(ts) {
  const note = / \* This interface was referenced by `[^`]+`'s JSON-Schema\n \* via the `definition` "[^"]+"\.\n/g;
  const patternNote =
    / *\/\*\*\n *\* This interface was referenced by `[^`]+`'s JSON-Schema definition\n *\* via the `patternProperty` "[^"]+"\.\n *\*\/\n/g;
  return ts
    .replace(note, '')
    .replace(patternNote, '')
    .replace(/( \*\n)+ \*\//g, ' */')
    .replace(/\/\*\*\n \*\/\n/g, '');
}

async function main() {
  const check = process.argv.includes('--check');
  let generated;
  try {
    generated = await generateTypes();
  } catch (err) {
    console.error(`gen-spec: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
  const rel = path.relative(repoRoot, typesOut);
  if (check) {
    const current = existsSync(typesOut) ? readFileSync(typesOut, 'utf8') : '';
    if (current !== generated) {
      console.error(`gen-spec: ${rel} is stale; run: node scripts/gen-spec.mjs`);
      process.exit(1);
    }
    return;
  }
  writeFileSync(typesOut, generated);
  console.log(`gen-spec: wrote ${rel}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
