import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import path from 'node:path';

/** Bytes of the regular files under dir (lstat: symlinks are not followed); 0 when unreadable. */
export function treeBytes(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop() as string;
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        try {
          total += lstatSync(p).size;
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  return total;
}
