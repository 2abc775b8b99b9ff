// Input is whatever runc accepts; the strict schema check is for what sysrunc writes. runc takes a
// few values the runtime-spec schema does not list, and engines write them: containerd's CRI sets
// linux.rootfsPropagation to "rshared" or "rslave" for pods with Bidirectional or HostToContainer
// mount propagation (runc's specconv maps all eight propagation names). A config is accepted when
// it validates once those values are read as the schema's; sysrunc's own output then carries the
// schema's form (spec-transform/rootfs-propagation.ts).
import type { Spec } from './spec.ts';
import { validateSpecDocument, type SpecValidation } from './validate.ts';

/** runc's recursive rootfsPropagation values, and the schema value each is written as. */
export const RECURSIVE_PROPAGATION: Readonly<Record<string, NonNullable<NonNullable<Spec['linux']>['rootfsPropagation']>>> = {
  rshared: 'shared',
  rslave: 'slave',
  rprivate: 'private',
  runbindable: 'unbindable',
};

/** Validates a caller's config as runc would accept it; the spec returned is the document as given. */
export function validateInputSpecDocument(doc: unknown): SpecValidation {
  const strict = validateSpecDocument(doc);
  if (strict.ok) return strict;
  const relaxed = validateSpecDocument(asSchemaForms(doc));
  return relaxed.ok ? { ok: true, spec: doc as Spec } : strict;
}

function asSchemaForms(doc: unknown): unknown {
  if (typeof doc !== 'object' || doc === null) return doc;
  const linux = (doc as { linux?: unknown }).linux;
  if (typeof linux !== 'object' || linux === null) return doc;
  const propagation = (linux as { rootfsPropagation?: unknown }).rootfsPropagation;
  if (typeof propagation !== 'string' || !Object.hasOwn(RECURSIVE_PROPAGATION, propagation)) return doc;
  return { ...doc, linux: { ...linux, rootfsPropagation: RECURSIVE_PROPAGATION[propagation] } };
}
