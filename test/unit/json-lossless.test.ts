import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLossless } from '../../src/oci/json-lossless.ts';

test('a uint64 above 2^53 is written back exactly', () => {
  const doc = parseLossless('{"linux":{"resources":{"memory":{"swappiness":18446744073709551615}}}}');
  assert.equal(doc.stringify(doc.value), '{"linux":{"resources":{"memory":{"swappiness":18446744073709551615}}}}');
});

test('big integers survive a transform that adds members', () => {
  const doc = parseLossless('{"a":[9007199254740993,1],"b":"x"}');
  const changed = { ...(doc.value as object), c: 2 };
  assert.equal(doc.stringify(changed), '{"a":[9007199254740993,1],"b":"x","c":2}');
});

test('digits inside strings are never touched', () => {
  const doc = parseLossless('{"id":"18446744073709551615","n":18446744073709551615,"e":"a\\"18446744073709552000"}');
  assert.equal(doc.stringify(doc.value), '{"id":"18446744073709551615","n":18446744073709551615,"e":"a\\"18446744073709552000"}');
});

test('ordinary numbers are unchanged', () => {
  const doc = parseLossless('{"a":1.5,"b":-3,"c":1e3,"d":9007199254740991}');
  assert.equal(doc.stringify(doc.value), '{"a":1.5,"b":-3,"c":1000,"d":9007199254740991}');
});

test('two different big integers that round alike are refused', () => {
  assert.throws(() => parseLossless('[18446744073709551615,18446744073709551614]'), /cannot both be kept exactly/);
});
