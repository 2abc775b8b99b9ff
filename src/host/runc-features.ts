// Asks the real runc what it can do (`<runc> features`), once, at the manager's start.
import { spawnSync } from 'node:child_process';
import { RUNC_1_1_FEATURES, runtimeFeaturesOf, type RuntimeFeatures } from '../spec-transform/runtime-features.ts';

export interface LearnedFeatures {
  readonly features: RuntimeFeatures;
  /** Why the facts are runc 1.1's (no answer, not JSON); none: they are runc's own answer. */
  readonly problem?: string;
}

/** runc 1.1 answers in milliseconds; a runtime that hangs must not hold the manager's start. */
const FEATURES_TIMEOUT_MS = 10_000;

export function learnRuntimeFeatures(binary: string): LearnedFeatures {
  const r = spawnSync(binary, ['features'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: FEATURES_TIMEOUT_MS });
  if (r.error !== undefined) return { features: RUNC_1_1_FEATURES, problem: `${binary} features: ${r.error.message}` };
  if (r.status !== 0) return { features: RUNC_1_1_FEATURES, problem: `${binary} features: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n')[0] ?? ''}` };
  try {
    return { features: runtimeFeaturesOf(JSON.parse(r.stdout)) };
  } catch (err) {
    return { features: RUNC_1_1_FEATURES, problem: `${binary} features: not JSON: ${(err as Error).message}` };
  }
}
