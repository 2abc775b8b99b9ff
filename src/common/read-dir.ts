import { readdirSync } from 'node:fs';

/** The names in dir, or none if dir does not exist; any other failure is thrown. */
export function readdirIfExists(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
