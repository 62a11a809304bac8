/** The pure parts of key ceremonies: threshold standing, signature checks, references and diffs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStagedReference, readableDiff } from '../../src/client/ceremony.js';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { loadVerifierKey } from '../../src/tuf/core/keys.js';
import { thresholdStatus, verifyEntry, type StagedThreshold } from '../../src/tuf/notary/staged.js';
import { ecdsaKey, signatureFor, type TestKey } from '../support/tuf-kit.js';

const verifier = (k: TestKey) => loadVerifierKey(k.keytype, k.publicB64, k.keyId);
const threshold = (name: string, n: number, keys: TestKey[]): StagedThreshold => ({
  name,
  description: name,
  threshold: n,
  keys: new Map(keys.map((k) => [k.keyId, verifier(k)])),
  problems: [],
});

test('each threshold counts its own keys; a shared key counts for both; a repeated signature once', () => {
  const [old, shared, fresh] = [ecdsaKey(), ecdsaKey(), ecdsaKey()];
  const message = canonicalJson({ _type: 'Root', version: 2 });
  const thresholds = [threshold('current-root', 1, [old, shared]), threshold('root', 2, [shared, fresh])];
  const sig = signatureFor(shared, message);
  const status = thresholdStatus(message, [sig, sig], thresholds);
  assert.deepEqual(
    status.map((t) => [t.name, t.signedBy, t.needed, t.pendingKeyIds]),
    [
      ['current-root', [shared.keyId], 0, [old.keyId]],
      ['root', [shared.keyId], 1, [fresh.keyId]],
    ],
  );
  // A signature over other bytes, or by a key no threshold lists, counts nowhere.
  const other = signatureFor(fresh, canonicalJson({ _type: 'Root', version: 3 }));
  assert.equal(verifyEntry(message, other, thresholds[1]!.keys), null);
  assert.equal(verifyEntry(message, signatureFor(ecdsaKey(), message), thresholds[1]!.keys), null);
  assert.equal(thresholdStatus(message, [other], thresholds)[1]!.needed, 2);
});

test('staged references: REPO@ID, or ID with the repository given', () => {
  const id = '3f2a4c1e-0b9d-4e8f-9a7b-6c5d4e3f2a1b';
  assert.deepEqual(parseStagedReference(`registry.example.com:5000/team/app@${id}`), { repo: 'registry.example.com:5000/team/app', id });
  assert.deepEqual(parseStagedReference(id, 'r/app'), { repo: 'r/app', id });
  assert.throws(() => parseStagedReference(id), /name its repository/);
  assert.throws(() => parseStagedReference('r/app@sha256:abc'), /not a staged update ID/);
});

test('the readable diff names what changed, was added and removed', () => {
  const before = { version: 1, roles: { root: { keyids: ['a'], threshold: 1 } }, keys: { a: { keytype: 'ecdsa-x509' } } };
  const after = { version: 2, roles: { root: { keyids: ['b', 'c'], threshold: 2 } }, keys: { b: { keytype: 'ecdsa-x509' }, c: { keytype: 'x'.repeat(200) } } };
  const lines = readableDiff(before, after);
  assert.ok(lines.includes('~ version: 1 → 2'), lines.join('\n'));
  assert.ok(lines.includes('~ roles.root.threshold: 1 → 2'));
  assert.ok(lines.includes('~ roles.root.keyids: ["a"] → ["b","c"]'));
  assert.ok(lines.includes('- keys.a.keytype: "ecdsa-x509"'));
  assert.ok(lines.includes('+ keys.b.keytype: "ecdsa-x509"'));
  assert.match(
    lines.find((l) => l.startsWith('+ keys.c'))!,
    /… \(202 characters, sha256 [0-9a-f]{12}\)$/,
  );
  assert.deepEqual(readableDiff(after, after), []);
});
