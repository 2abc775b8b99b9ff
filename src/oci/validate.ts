// Validates OCI config.json / state documents against the runtime-spec v1.3.0 schema using the
// precompiled validators (scripts/gen-validators.mjs), so no schema is compiled at runtime.
import type { ErrorObject } from 'ajv';
import type { Spec, State } from './spec.ts';
import { validateConfig, validateState, type GeneratedValidator } from './validators.generated.js';

type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };
export type SpecValidation = { ok: true; spec: Spec } | { ok: false; errors: string[] };
export type StateValidation = { ok: true; state: State } | { ok: false; errors: string[] };

export function validateSpecDocument(doc: unknown): SpecValidation {
  const result = run<Spec>(validateConfig, doc);
  return result.ok ? { ok: true, spec: result.value } : result;
}

export function validateStateDocument(doc: unknown): StateValidation {
  const result = run<State>(validateState, doc);
  return result.ok ? { ok: true, state: result.value } : result;
}

function run<T>(validator: GeneratedValidator, doc: unknown): ValidationResult<T> {
  if (validator(doc)) return { ok: true, value: doc as T };
  return { ok: false, errors: formatSchemaErrors(validator.errors ?? []) };
}

/**
 * One line per problem: "<JSON pointer>: <message>", e.g. "/process/user/uid: must be integer".
 * The root is shown as "/". Duplicates are dropped, and so is an anyOf summary ("must match a
 * schema in anyOf") when a more specific error at or below the same path already says what is
 * wrong (linux.namespaces items are a one-branch anyOf in the schema).
 */
export function formatSchemaErrors(errors: readonly ErrorObject[]): string[] {
  const explained = (e: ErrorObject): boolean =>
    errors.some(
      (other) =>
        other.keyword !== 'anyOf' &&
        (other.instancePath === e.instancePath || other.instancePath.startsWith(`${e.instancePath}/`)),
    );
  const lines = errors
    .filter((e) => e.keyword !== 'anyOf' || !explained(e))
    .map((e) => `${e.instancePath === '' ? '/' : e.instancePath}: ${describe(e)}`);
  return [...new Set(lines)];
}

function describe(error: ErrorObject): string {
  const message = error.message ?? `fails "${error.keyword}"`;
  const params: Record<string, unknown> = error.params;
  const allowed = params['allowedValues'];
  if (error.keyword === 'enum' && Array.isArray(allowed)) {
    return `${message}: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (error.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
    return `${message}: ${JSON.stringify(params['additionalProperty'])}`;
  }
  return message;
}
