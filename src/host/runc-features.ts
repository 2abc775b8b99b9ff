// Asks the real runc what it can do (`<runc> features`), once, at the manager's start. What the
// answer means for the transforms is theirs to read (spec-transform/runtime-features.ts): the
// caller hands in the reader and the facts to fall back on, so the host layer imports no transform.
import { spawnSync } from 'node:child_process';

export interface LearnedFeatures<Facts> {
  readonly features: Facts;
  /** Why the facts are the fallback (no answer, not JSON); none: they are read from runc's own answer. */
  readonly problem?: string;
}

/** runc 1.1 answers in milliseconds; a runtime that hangs must not hold the manager's start. */
const FEATURES_TIMEOUT_MS = 10_000;

export function learnRuntimeFeatures<Facts>(binary: string, readAnswer: (doc: unknown) => Facts, fallback: Facts): LearnedFeatures<Facts> {
  const r = spawnSync(binary, ['features'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: FEATURES_TIMEOUT_MS });
  if (r.error !== undefined) return { features: fallback, problem: `${binary} features: ${r.error.message}` };
  if (r.status !== 0) return { features: fallback, problem: `${binary} features: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n')[0] ?? ''}` };
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch (err) {
    return { features: fallback, problem: `${binary} features: not JSON: ${(err as Error).message}` };
  }
  return { features: readAnswer(doc) };
}
