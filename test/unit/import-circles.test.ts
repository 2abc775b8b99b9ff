// No module of src/ imports itself back through others (an import circle): a circle makes load
// order matter, and the two files of one can no longer be read or changed apart. Type-only imports
// count too: they tie the files together just the same for a reader. And the neutral folders
// (common, oci, host) import nothing from the folders that build on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    // Generated code (protobuf types) is not written or read by hand.
    if (e.isDirectory()) return e.name === 'generated' ? [] : sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** The relative .ts modules a file imports or re-exports (static and dynamic). */
export function localImports(file: string, text: string): string[] {
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2] ?? '');
  return specifiers.filter((s) => s.startsWith('.') && s.endsWith('.ts')).map((s) => path.resolve(path.dirname(file), s));
}

/** Every import circle of the graph, each once, as the files along it (Tarjan's strongly connected components). */
export function importCircles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    for (let top = stack.pop()!; ; top = stack.pop()!) {
      onStack.delete(top);
      component.push(top);
      if (top === node) break;
    }
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) circles.push(component);
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return circles;
}

test('no module of src/ is part of an import circle', () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, localImports(f, readFileSync(f, 'utf8'))]));
  // Guards against a parser that finds nothing (and so no circle): src/ has hundreds of imports.
  assert.ok([...graph.values()].flat().length > 200, 'the import scan found almost no imports');
  const circles = importCircles(graph).map((c) => c.map((f) => path.relative(SRC, f)).sort().join(' <-> '));
  assert.deepEqual(circles, []);
});

/**
 * The neutral folders, lowest first, and what each may import: code every side uses (common), the
 * host's kernel and files (host), the OCI formats (oci). None of them imports a service (manager,
 * runtime-call, depot, tenants, their APIs and clients) or a transform: those build on them.
 */
const NEUTRAL_MAY_IMPORT: ReadonlyMap<string, readonly string[]> = new Map([
  ['common', ['common', 'testing']],
  ['oci', ['oci', 'common', 'testing']],
  ['host', ['host', 'oci', 'common', 'testing']],
]);

/** "folder/file.ts imports other/file.ts" for each import of a neutral folder outside what it may import. */
export function importsUpward(graph: ReadonlyMap<string, readonly string[]>, root: string): string[] {
  const topFolder = (file: string) => path.relative(root, file).split(path.sep)[0] ?? '';
  return [...graph].flatMap(([file, imports]) => {
    const allowed = NEUTRAL_MAY_IMPORT.get(topFolder(file));
    if (allowed === undefined) return [];
    return imports.filter((to) => !allowed.includes(topFolder(to))).map((to) => `${path.relative(root, file)} imports ${path.relative(root, to)}`);
  });
}

test('common, oci and host import nothing from a service or a transform, and none from a folder above its own', () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, localImports(f, readFileSync(f, 'utf8'))]));
  // Guards against a folder the scan reads nothing of (and so finds nothing wrong in).
  for (const folder of NEUTRAL_MAY_IMPORT.keys()) assert.ok(files.some((f) => f.startsWith(path.join(SRC, folder, path.sep)) && (graph.get(f) ?? []).length > 0), `no imports read in src/${folder}`);
  assert.deepEqual(importsUpward(graph, SRC), []);
});

test('the upward check names a host file that imports a transform and lets it import oci', () => {
  const graph = new Map([
    ['/s/host/a.ts', ['/s/spec-transform/t.ts', '/s/oci/o.ts']],
    ['/s/manager/m.ts', ['/s/host/a.ts']],
  ]);
  assert.deepEqual(importsUpward(graph, '/s'), ['host/a.ts imports spec-transform/t.ts']);
});

test('the circle check finds a circle of two files and one through three', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['a']],
    ['c', ['d']],
    ['d', ['e']],
    ['e', ['c']],
    ['f', ['a']],
  ]);
  assert.deepEqual(importCircles(graph).map((c) => c.sort()), [['a', 'b'], ['c', 'd', 'e']]);
});
