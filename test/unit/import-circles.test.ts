// No module of src/ imports itself back through others (an import circle): a circle makes load
// order matter, and the two files of one can no longer be read or changed apart. Type-only imports
// count too: they tie the files together just the same for a reader.
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
