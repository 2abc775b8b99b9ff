// The containerd id of a tenant's container names exactly one (namespace, name) pair, and is a
// valid containerd identifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { containerdId, legacyContainerdId, MAX_CONTAINERD_ID, parseContainerdId } from '../../src/tenants/container-ids.ts';

// containerd's identifier rule (identifiers.Validate).
const CONTAINERD_IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const identifier = fc.array(fc.stringMatching(/^[A-Za-z0-9]{1,4}$/), { minLength: 1, maxLength: 5 }).chain((parts) =>
  fc.array(fc.constantFrom('.', '_', '-'), { minLength: parts.length - 1, maxLength: parts.length - 1 }).map((seps) =>
    parts.map((p, i) => (i === 0 ? p : `${seps[i - 1]}${p}`)).join('')),
);

test('tenant a\'s "b.c" and tenant "a.b"\'s "c" get different ids (the same one before)', () => {
  assert.equal(legacyContainerdId('a', 'b.c'), legacyContainerdId('a.b', 'c'));
  assert.notEqual(containerdId('a', 'b.c'), containerdId('a.b', 'c'));
});

test('every id reads back as the one (namespace, name) it was made of', () => {
  fc.assert(fc.property(identifier, identifier, (ns, name) => {
    assert.deepEqual(parseContainerdId(containerdId(ns, name)), { ns, name });
  }), { numRuns: 2000 });
});

test('two different (namespace, name) pairs never share an id', () => {
  fc.assert(fc.property(identifier, identifier, identifier, identifier, (ns1, n1, ns2, n2) => {
    fc.pre(ns1 !== ns2 || n1 !== n2);
    assert.notEqual(containerdId(ns1, n1), containerdId(ns2, n2));
  }), { numRuns: 5000 });
});

test('an id is a containerd identifier', () => {
  fc.assert(fc.property(identifier, identifier, (ns, name) => {
    assert.match(containerdId(ns, name), CONTAINERD_IDENTIFIER);
  }), { numRuns: 2000 });
});

test('ids of another form (old-style, docker\'s) are not read as new ones', () => {
  assert.equal(parseContainerdId('a.b.c'), undefined);
  assert.equal(parseContainerdId('0123456789abcdef'), undefined);
  assert.equal(parseContainerdId('3-ab.c'), undefined);
  assert.equal(MAX_CONTAINERD_ID, 76);
});
