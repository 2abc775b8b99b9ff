// Test-time OCI schema checks, compiled with ajv straight from the runtime-spec schema files in
// ../shared (SYSRUNC_SPEC_SCHEMA_DIR overrides). Deliberately independent of the generated
// validators and of scripts/gen-spec.mjs's bundler: it is the cross-check that every config.json
// sysrunc writes is a valid OCI config.
import { AssertionError } from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Spec, State } from '../../src/oci/spec.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function specSchemaDir(): string {
  return path.resolve(
    process.env['SYSRUNC_SPEC_SCHEMA_DIR'] ?? path.join(repoRoot, '../shared/oci-runtime-spec-v1.3.0/schema'),
  );
}

interface SchemaValidators {
  config: ValidateFunction;
  state: ValidateFunction;
  features: ValidateFunction;
}

let compiled: SchemaValidators | undefined;

function validators(): SchemaValidators {
  if (compiled) return compiled;
  const dir = specSchemaDir();
  // strict: false: the OCI schema uses tuple "items" and keywords ajv's strict mode rejects.
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const text = readFileSync(path.join(dir, file), 'utf8')
      // defs.json has {"$ref": "#definitions/uint32"}, which is not a JSON pointer.
      .replaceAll('"#definitions/', '"#/definitions/');
    const schema: unknown = JSON.parse(text);
    if (typeof schema !== 'object' || schema === null) throw new Error(`${file}: not a JSON object`);
    // ajv 8 has no draft-04 meta-schema; nothing in these files depends on draft-04 semantics.
    const { $schema: _draft, ...rest } = schema as Record<string, unknown>;
    // Each file gets its own file: URL as base, so "defs.json#/..." refs resolve next to it.
    ajv.addSchema(rest, pathToFileURL(path.join(dir, file)).href);
  }
  const get = (file: string): ValidateFunction => {
    const fn = ajv.getSchema(pathToFileURL(path.join(dir, file)).href);
    if (!fn) throw new Error(`${file}: schema not found in ${dir}`);
    return fn;
  };
  compiled = { config: get('config-schema.json'), state: get('state-schema.json'), features: get('features-schema.json') };
  return compiled;
}

function describe(errors: readonly ErrorObject[]): string[] {
  const lines = errors.map((e) => `${e.instancePath === '' ? '/' : e.instancePath}: ${e.message ?? e.keyword}`);
  return [...new Set(lines)];
}

/** Schema problems of a config.json document, one "<JSON pointer>: <message>" line each; [] if valid. */
export function configSchemaErrors(doc: unknown): string[] {
  const validate = validators().config;
  return validate(doc) ? [] : describe(validate.errors ?? []);
}

/** Schema problems of a container state document, one "<JSON pointer>: <message>" line each; [] if valid. */
export function stateSchemaErrors(doc: unknown): string[] {
  const validate = validators().state;
  return validate(doc) ? [] : describe(validate.errors ?? []);
}

/** Schema problems of a `features` document, one "<JSON pointer>: <message>" line each; [] if valid. */
export function featuresSchemaErrors(doc: unknown): string[] {
  const validate = validators().features;
  return validate(doc) ? [] : describe(validate.errors ?? []);
}

export function assertValidConfig(doc: unknown): asserts doc is Spec {
  const errors = configSchemaErrors(doc);
  if (errors.length > 0) fail('config', errors, doc);
}

export function assertValidState(doc: unknown): asserts doc is State {
  const errors = stateSchemaErrors(doc);
  if (errors.length > 0) fail('state', errors, doc);
}

function fail(kind: string, errors: string[], doc: unknown): never {
  throw new AssertionError({
    message: `not a valid OCI ${kind} document (runtime-spec schema in ${specSchemaDir()}):\n  ${errors.join('\n  ')}`,
    actual: doc,
    expected: `a valid OCI ${kind} document`,
    operator: 'assertValid',
  });
}
