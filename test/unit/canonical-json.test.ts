import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson, canonicalJsonString, CanonicalJsonError } from '../../src/tuf/core/canonical-json.js';
import { notarySessionDir } from '../support/paths.js';

test('object keys are sorted by byte order, so upper case comes before lower case', () => {
  assert.equal(canonicalJsonString({ b: 1, a: 2, B: 3, _type: 4, '': 5 }), '{"":5,"B":3,"_type":4,"a":2,"b":1}');
});

test('keys are sorted by UTF-8 bytes: U+E000 before U+1F600, unlike JS string order', () => {
  const astral = '\u{1F600}'; // UTF-16 D83D DE00, UTF-8 F0 9F 98 80
  const privateUse = '\uE000'; // UTF-16 E000, UTF-8 EE 80 80
  assert.deepEqual([privateUse, astral].sort(), [astral, privateUse]); // what JS's default sort does
  assert.equal(canonicalJsonString({ [astral]: 1, [privateUse]: 2 }), `{"${privateUse}":2,"${astral}":1}`);
  assert.equal(canonicalJsonString({ [privateUse]: 2, [astral]: 1 }), `{"${privateUse}":2,"${astral}":1}`);
});

test('keys sharing a prefix sort shorter first', () => {
  assert.equal(canonicalJsonString({ 'targets/releases': 1, targets: 2, 'targets/a': 3 }), '{"targets":2,"targets/a":3,"targets/releases":1}');
});

test('only double quote and backslash are escaped in strings', () => {
  assert.equal(canonicalJsonString('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
  assert.equal(canonicalJsonString({ 'k"\\': 'v' }), '{"k\\"\\\\":"v"}');
  assert.equal(canonicalJsonString('</script>&'), '"</script>&"');
});

test('newlines, control characters and U+2028 are written raw', () => {
  const s = 'a\nb\r\tc\u0000\u0001\u001f\u007f\u2028\u2029d';
  const encoded = canonicalJsonString(s);
  assert.equal(encoded, `"${s}"`);
  assert.equal(encoded.length, s.length + 2);
  assert.ok(!encoded.includes('\\'));
});

test('non-ASCII text is written as raw UTF-8', () => {
  const bytes = canonicalJson('é€😀');
  assert.deepEqual(bytes, Buffer.from('"é€😀"', 'utf8'));
  assert.equal(bytes.length, 2 + 2 + 3 + 4);
});

test('nested arrays and objects are written without whitespace, array order kept', () => {
  const value = { z: [3, 1, { y: null, x: true }, []], a: { c: false, b: {} }, m: 'text' };
  assert.equal(canonicalJsonString(value), '{"a":{"b":{},"c":false},"m":"text","z":[3,1,{"x":true,"y":null},[]]}');
});

test('integers are accepted up to 2^53 - 1, negative ones too', () => {
  assert.equal(canonicalJsonString([0, -5, 2390, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]), '[0,-5,2390,9007199254740991,-9007199254740991]');
  assert.equal(canonicalJsonString(1e3), '1000');
});

test('floats, NaN, infinities and integers from 2^53 are refused', () => {
  for (const n of [1.5, -0.25, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, -(2 ** 53)]) {
    assert.throws(() => canonicalJsonString({ version: n }), CanonicalJsonError, String(n));
  }
});

test('values JSON cannot hold are refused', () => {
  for (const v of [undefined, () => 1, Symbol('s'), 10n]) {
    assert.throws(() => canonicalJsonString({ v }), CanonicalJsonError);
  }
});

test('the canonical form of every fixture file\'s "signed" is exactly its bytes in the file', () => {
  const dir = path.join(notarySessionDir, 'metadata');
  let checked = 0;
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const bytes = readFileSync(path.join(dir, name));
    const parsed = JSON.parse(bytes.toString('utf8')) as { signed?: unknown };
    if (parsed.signed === undefined) continue;
    const text = bytes.toString('utf8');
    assert.ok(text.startsWith('{"signed":'), name);
    const raw = bytes.subarray('{"signed":'.length, bytes.lastIndexOf(',"signatures":'));
    assert.deepEqual(canonicalJson(parsed.signed), raw, name);
    checked++;
  }
  assert.equal(checked, 6); // 1.root, root, snapshot, targets, targets_releases, timestamp
});

test('RFC 8785 / JSON.stringify escaping of a PEM differs from ours, which is why canonicalize is not used', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIQ\n-----END CERTIFICATE-----\n';
  const ours = canonicalJsonString({ public: pem });
  const rfc8785Style = `{"public":${JSON.stringify(pem)}}`; // RFC 8785 strings are JSON.stringify's
  assert.notEqual(ours, rfc8785Style);
  assert.ok(rfc8785Style.includes('\\n'));
  assert.ok(!ours.includes('\\n'));
  assert.equal(ours, `{"public":"${pem}"}`);
  // Without characters that need escaping the two agree.
  assert.equal(canonicalJsonString({ b: 'x', a: [1] }), '{"a":[1],"b":"x"}');
});
