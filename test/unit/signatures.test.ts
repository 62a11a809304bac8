import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { loadVerifierKey, type VerifierKey } from '../../src/tuf/core/keys.js';
import { countValidSignatures, meetsThreshold, type SignatureEntry } from '../../src/tuf/core/signatures.js';
import { loadRootCertificateKey } from '../../src/tuf/notary/x509.js';
import { notarySessionDir } from '../support/paths.js';
import { generateKey, makeCert } from '../support/openssl.js';

// ---------------------------------------------------------------------------------------------
// Fixtures: every signature notary made in the recorded session verifies

interface MetaKey {
  keytype: string;
  keyval: { public: string };
}
interface Doc {
  name: string;
  text: string;
  signed: any;
  signatures: SignatureEntry[];
}

function doc(name: string, text: string): Doc {
  const parsed = JSON.parse(text);
  return { name, text, signed: parsed.signed, signatures: parsed.signatures };
}

const metadataDoc = (file: string) => doc(file, readFileSync(path.join(notarySessionDir, 'metadata', file), 'utf8'));

/** The uploaded documents of one recorded POST, by role (a plain split is enough for these files). */
function uploadedDocs(prefix: string): Map<string, Doc> {
  const dir = path.join(notarySessionDir, 'requests');
  const headers = JSON.parse(readFileSync(path.join(dir, `${prefix}-post-headers.json`), 'utf8'));
  const boundary = /boundary=([^;]+)/.exec(headers['content-type'])![1]!;
  const body = readFileSync(path.join(dir, `${prefix}-post-body.multipart`), 'utf8');
  const out = new Map<string, Doc>();
  for (const part of body.split(`--${boundary}`)) {
    const role = /filename="([^"]+)"/.exec(part)?.[1];
    if (!role) continue;
    const content = part.slice(part.indexOf('\r\n\r\n') + 4).replace(/\r\n$/, '');
    out.set(role, doc(`${prefix}:${role}`, content));
  }
  return out;
}

function roleKeys(keyids: string[], keys: Record<string, MetaKey>): Map<string, VerifierKey> {
  return new Map(keyids.map((id) => [id, loadVerifierKey(keys[id]!.keytype, keys[id]!.keyval.public, id)]));
}

function assertAllSignaturesValid(d: Doc, role: { keyids: string[]; threshold: number }, keys: Record<string, MetaKey>) {
  const message = canonicalJson(d.signed);
  // The canonical bytes are exactly what notary put on the wire.
  const raw = d.text.slice('{"signed":'.length, d.text.lastIndexOf(',"signatures":'));
  assert.ok(d.text.startsWith('{"signed":'), d.name);
  assert.equal(message.toString('utf8'), raw, `${d.name}: canonical JSON differs from the signed bytes`);
  const verifiers = roleKeys(role.keyids, keys);
  assert.ok(d.signatures.length > 0, d.name);
  assert.equal(countValidSignatures(message, d.signatures, verifiers), d.signatures.length, d.name);
  assert.ok(meetsThreshold(message, d.signatures, verifiers, role.threshold), d.name);
  // Any change to the signed bytes breaks every signature.
  const tampered = Buffer.from(message);
  tampered[tampered.length - 2]! ^= 1;
  assert.equal(countValidSignatures(tampered, d.signatures, verifiers), 0, d.name);
}

/** Checks a document against the role in `root`, or for a delegation against its parent's entry. */
function checkDoc(d: Doc, root: Doc, delegation?: { parent: Doc; name: string }) {
  if (delegation) {
    const { keys, roles } = delegation.parent.signed.delegations;
    const role = roles.find((r: { name: string }) => r.name === delegation.name);
    assert.ok(role, `${d.name}: ${delegation.name} is delegated`);
    assertAllSignaturesValid(d, role, keys);
  } else {
    assertAllSignaturesValid(d, root.signed.roles[d.signed._type.toLowerCase()], root.signed.keys);
  }
}

test('fixture metadata: canonical bytes match the files and every signature verifies', () => {
  const root = metadataDoc('root.json');
  const root1 = metadataDoc('1.root.json');
  const targets = metadataDoc('targets.json');
  checkDoc(root, root);
  checkDoc(root1, root1);
  checkDoc(targets, root);
  checkDoc(metadataDoc('snapshot.json'), root);
  checkDoc(metadataDoc('timestamp.json'), root);
  checkDoc(metadataDoc('targets_releases.json'), root, { parent: targets, name: 'targets/releases' });
});

test('fixture uploads: every uploaded document verifies with the keys of its role', () => {
  const root1 = metadataDoc('1.root.json');
  const root2 = metadataDoc('root.json');
  // Which root was current for each POST: the snapshot key was rotated by POST 018.
  const sessions: [string, Doc][] = [
    ['005', root1],
    ['011', root1],
    ['018', root2],
    ['026', root2],
    ['032', root2],
  ];
  const seen: string[] = [];
  let parent = metadataDoc('targets.json');
  for (const [prefix, root] of sessions) {
    const docs = uploadedDocs(prefix);
    assert.ok(docs.size > 0, prefix);
    for (const [role, d] of docs) {
      if (role === 'targets') parent = d;
      checkDoc(d, role === 'root' ? d : root, role.startsWith('targets/') ? { parent, name: role } : undefined);
      seen.push(`${prefix}:${role}`);
    }
  }
  for (const expected of ['005:root', '005:targets', '005:snapshot', '018:root', '032:targets/releases']) {
    assert.ok(seen.includes(expected), expected);
  }
  const uploadedRoot = uploadedDocs('018').get('root')!;
  assert.equal(uploadedRoot.text, readFileSync(path.join(notarySessionDir, 'metadata', 'root.json'), 'utf8'));
});

test('fixture roots are self-signed by their root certificate under the recomputed key ID', () => {
  for (const file of ['root.json', '1.root.json']) {
    const root = metadataDoc(file);
    const keys = new Map<string, VerifierKey>();
    for (const id of root.signed.roles.root.keyids as string[]) {
      const key = root.signed.keys[id] as MetaKey;
      const loaded = loadRootCertificateKey(key.keytype, key.keyval.public, 'docker.io/fixtures/app', {
        checkExpiry: true,
        now: new Date('2027-06-01T00:00:00Z'),
      });
      if (loaded.key) keys.set(loaded.key.keyId, loaded.key);
    }
    assert.equal(keys.size, 1);
    assert.ok(meetsThreshold(canonicalJson(root.signed), root.signatures, keys, root.signed.roles.root.threshold));
  }
});

// ---------------------------------------------------------------------------------------------
// Threshold counting with generated keys

const message = canonicalJson({ _type: 'Targets', version: 1 });
const spkiB64 = (key: KeyObject) => key.export({ type: 'spki', format: 'der' }).toString('base64');

function ecdsaKey() {
  const pair = generateKey('p256');
  const verifier = loadVerifierKey('ecdsa', spkiB64(pair.publicKey));
  const signWith = (keyid = verifier.keyId, msg = message): SignatureEntry => ({
    keyid,
    method: 'ecdsa',
    sig: sign('sha256', msg, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64'),
  });
  return { ...pair, verifier, sign: signWith };
}

const mapOf = (...keys: VerifierKey[]) => new Map(keys.map((k) => [k.keyId, k]));

test('a key counts once, however often it signs', () => {
  const a = ecdsaKey();
  const keys = mapOf(a.verifier);
  const sigs = [a.sign(), a.sign(), a.sign()];
  assert.equal(countValidSignatures(message, sigs, keys), 1);
  assert.equal(meetsThreshold(message, sigs, keys, 1), true);
  assert.equal(meetsThreshold(message, sigs, keys, 2), false);
});

test('the same key material under two key IDs counts once', () => {
  const a = ecdsaKey();
  // As a plain ecdsa key and as the ecdsa-x509 certificate of that key.
  const cert = makeCert({ cn: 'docker.io/fixtures/app', key: { privateKey: a.privateKey, publicKey: a.publicKey } });
  const asCert = loadVerifierKey('ecdsa-x509', cert.b64);
  assert.notEqual(asCert.keyId, a.verifier.keyId);
  assert.equal(asCert.identity, a.verifier.identity);
  const keys = mapOf(a.verifier, asCert);
  const sigs = [a.sign(), a.sign(asCert.keyId)];
  assert.equal(countValidSignatures(message, sigs, keys), 1);
  assert.equal(meetsThreshold(message, sigs, keys, 2), false);

  // The same ecdsa key listed under an extra ID.
  const extra = loadVerifierKey('ecdsa', spkiB64(a.publicKey), 'f'.repeat(64));
  const keys2 = mapOf(a.verifier, extra);
  assert.equal(countValidSignatures(message, [a.sign(), a.sign(extra.keyId)], keys2), 1);
});

test('distinct keys add up to the threshold', () => {
  const a = ecdsaKey();
  const b = ecdsaKey();
  const keys = mapOf(a.verifier, b.verifier);
  const sigs = [a.sign(), b.sign()];
  assert.equal(countValidSignatures(message, sigs, keys), 2);
  assert.equal(meetsThreshold(message, sigs, keys, 2), true);
  assert.equal(meetsThreshold(message, sigs, keys, 3), false);
  assert.equal(meetsThreshold(message, [a.sign()], keys, 2), false);
});

test('signatures from keys outside the role, or under the wrong ID, do not count', () => {
  const a = ecdsaKey();
  const b = ecdsaKey();
  const outsider = ecdsaKey();
  const keys = mapOf(a.verifier, b.verifier);
  assert.equal(countValidSignatures(message, [outsider.sign()], keys), 0);
  assert.equal(countValidSignatures(message, [outsider.sign(), a.sign()], keys), 1);
  // b's key ID with a's signature: not b's signature.
  assert.equal(countValidSignatures(message, [a.sign(b.verifier.keyId)], keys), 0);
  // An invalid signature does not stop a later valid one of the same key from counting.
  const bad = { ...a.sign(), sig: a.sign(a.verifier.keyId, Buffer.from('other')).sig };
  assert.equal(countValidSignatures(message, [bad, a.sign()], keys), 1);
});

test('threshold below 1, no signatures and malformed entries never pass or throw', () => {
  const a = ecdsaKey();
  const keys = mapOf(a.verifier);
  assert.equal(meetsThreshold(message, [a.sign()], keys, 0), false);
  assert.equal(meetsThreshold(message, [a.sign()], keys, -1), false);
  assert.equal(meetsThreshold(message, [a.sign()], keys, 0.5), false);
  assert.equal(meetsThreshold(message, [], keys, 1), false);
  assert.equal(meetsThreshold(message, [], keys, 0), false);
  assert.equal(meetsThreshold(message, [a.sign()], new Map(), 1), false);

  const good = a.sign();
  const malformed = [
    { ...good, sig: '!!not base64!!' },
    { ...good, sig: good.sig.replace(/=+$/, '') },
    { ...good, sig: '' },
    { ...good, method: 'eddsa' },
    { ...good, method: 42 },
    { ...good, sig: null },
    { keyid: null },
    null,
    'text',
  ] as unknown as SignatureEntry[];
  assert.equal(countValidSignatures(message, malformed, keys), 0);
  assert.equal(meetsThreshold(message, [...malformed, good], keys, 1), true);
  assert.equal(countValidSignatures(message, null as unknown as SignatureEntry[], keys), 0);
});
