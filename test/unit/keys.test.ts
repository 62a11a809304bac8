import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalKeyId, KeyError, loadVerifierKey, tufKeyId } from '../../src/tuf/core/keys.js';
import { notarySessionDir } from '../support/paths.js';
import { generateKey, makeCert } from '../support/openssl.js';

interface MetaKey {
  keytype: string;
  keyval: { public: string; private: null };
}

function metadata(name: string): { signed: Record<string, any> } {
  return JSON.parse(readFileSync(path.join(notarySessionDir, 'metadata', name), 'utf8'));
}

const spkiB64 = (key: KeyObject) => key.export({ type: 'spki', format: 'der' }).toString('base64');
const message = Buffer.from('{"signed":"payload"}');

test('fixture key IDs are the TUF IDs of their keys', () => {
  const keySets: Record<string, MetaKey>[] = [
    metadata('root.json').signed['keys'],
    metadata('1.root.json').signed['keys'],
    metadata('targets.json').signed['delegations'].keys,
  ];
  let count = 0;
  for (const keys of keySets) {
    for (const [id, key] of Object.entries(keys)) {
      assert.equal(tufKeyId(key.keytype, key.keyval.public), id);
      const loaded = loadVerifierKey(key.keytype, key.keyval.public);
      assert.equal(loaded.keyId, id);
      assert.equal(loaded.keytype, key.keytype);
      count++;
    }
  }
  assert.ok(count >= 9);
  // The server's timestamp key as served by GET …/timestamp.key is the root's timestamp key.
  const tsKey = JSON.parse(readFileSync(path.join(notarySessionDir, 'metadata', 'timestamp.key.json'), 'utf8'));
  assert.deepEqual(metadata('root.json').signed['roles'].timestamp.keyids, [tufKeyId(tsKey.keytype, tsKey.keyval.public)]);
});

test('canonical key ID of the fixture root certificate is the ID of its bare public key', () => {
  const keys: Record<string, MetaKey> = metadata('root.json').signed['keys'];
  const [rootId] = metadata('root.json').signed['roles'].root.keyids as string[];
  const cert = keys[rootId!]!;
  const canonical = canonicalKeyId(cert.keytype, cert.keyval.public);
  assert.notEqual(canonical, rootId);
  const leafKey = loadVerifierKey(cert.keytype, cert.keyval.public).publicKey;
  assert.equal(canonical, tufKeyId('ecdsa', spkiB64(leafKey)));
  assert.equal(loadVerifierKey('ecdsa', spkiB64(leafKey)).identity, loadVerifierKey(cert.keytype, cert.keyval.public).identity);
  // Non-x509 keys: canonical ID = TUF ID.
  for (const [id, key] of Object.entries(keys)) {
    if (!key.keytype.endsWith('-x509')) assert.equal(canonicalKeyId(key.keytype, key.keyval.public), id);
  }
  assert.throws(() => canonicalKeyId('ecdsa-x509', 'bm90IGEgY2VydA=='), KeyError);
});

// ---------------------------------------------------------------------------------------------
// Generated keys, every keytype and method

const ecdsaSign = (key: KeyObject, msg: Buffer) => sign('sha256', msg, { key, dsaEncoding: 'ieee-p1363' });
const pssSign = (key: KeyObject, msg: Buffer, saltLength = 32) => sign('sha256', msg, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
const pkcs1Sign = (key: KeyObject, msg: Buffer) => sign('sha256', msg, { key, padding: constants.RSA_PKCS1_PADDING });
const edSign = (key: KeyObject, msg: Buffer) => sign(null, msg, key);

function assertVerifies(
  keytype: string,
  publicB64: string,
  method: string,
  signer: (key: KeyObject, msg: Buffer) => Buffer,
  privateKey: KeyObject,
  otherPrivateKey: KeyObject,
) {
  const key = loadVerifierKey(keytype, publicB64);
  assert.equal(key.keyId, tufKeyId(keytype, publicB64));
  const sig = signer(privateKey, message);
  assert.equal(key.verify(method, message, sig), true, `${keytype}/${method} accepts`);
  assert.equal(key.verify(method.toUpperCase(), message, sig), true, 'method is case-insensitive');
  assert.equal(key.verify(method, Buffer.from('{"signed":"payloaD"}'), sig), false, 'tampered message');
  assert.equal(key.verify(method, message, signer(otherPrivateKey, message)), false, 'wrong key');
  const flipped = Buffer.from(sig);
  flipped[flipped.length - 1]! ^= 1;
  assert.equal(key.verify(method, message, flipped), false, 'tampered signature');
  assert.equal(key.verify(method, message, Buffer.alloc(0)), false, 'empty signature');
  assert.equal(key.verify('bogus', message, sig), false, 'unknown method');
}

test('ecdsa and ecdsa-x509 keys verify raw r||s P-256 signatures only', () => {
  const { privateKey, publicKey } = generateKey('p256');
  const other = generateKey('p256').privateKey;
  assertVerifies('ecdsa', spkiB64(publicKey), 'ecdsa', ecdsaSign, privateKey, other);
  const cert = makeCert({ cn: 'docker.io/fixtures/app', key: { privateKey, publicKey } });
  assertVerifies('ecdsa-x509', cert.b64, 'ecdsa', ecdsaSign, privateKey, other);

  const key = loadVerifierKey('ecdsa', spkiB64(publicKey));
  const der = sign('sha256', message, privateKey); // default DER encoding
  assert.notEqual(der.length, 64);
  assert.equal(key.verify('ecdsa', message, der), false, 'DER signature refused');
  for (const method of ['rsapss', 'rsapkcs1v15', 'pycrypto-pkcs#1 pss', 'eddsa']) {
    assert.equal(key.verify(method, message, ecdsaSign(privateKey, message)), false, method);
  }
  assert.equal(loadVerifierKey('ecdsa', spkiB64(publicKey)).identity, loadVerifierKey('ecdsa-x509', cert.b64).identity);
});

test('rsa and rsa-x509 keys verify PSS (salt 32) and PKCS#1 v1.5', () => {
  const { privateKey, publicKey } = generateKey('rsa2048');
  const other = generateKey('rsa2048').privateKey;
  const cert = makeCert({ cn: 'docker.io/fixtures/app', key: { privateKey, publicKey } });
  for (const [keytype, b64] of [
    ['rsa', spkiB64(publicKey)],
    ['rsa-x509', cert.b64],
  ] as const) {
    assertVerifies(keytype, b64, 'rsapss', (k, m) => pssSign(k, m), privateKey, other);
    assertVerifies(keytype, b64, 'rsapkcs1v15', pkcs1Sign, privateKey, other);
    const key = loadVerifierKey(keytype, b64);
    assert.equal(key.verify('rsapss', message, pssSign(privateKey, message, 20)), false, 'salt 20 refused');
    assert.equal(key.verify('rsapss', message, pkcs1Sign(privateKey, message)), false, 'PKCS#1 sig is not PSS');
    assert.equal(key.verify('rsapkcs1v15', message, pssSign(privateKey, message)), false, 'PSS sig is not PKCS#1');
    assert.equal(key.verify('ecdsa', message, pssSign(privateKey, message)), false);
    // notary's PyCrypto verifier reads PEM only, so it never accepts DER or certificate keys.
    assert.equal(key.verify('pycrypto-pkcs#1 pss', message, pssSign(privateKey, message)), false);
  }
});

test('legacy pycrypto-pkcs#1 pss works for PEM-wrapped rsa keys only', () => {
  const { privateKey, publicKey } = generateKey('rsa2048');
  const pemB64 = Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }) as string).toString('base64');
  const other = generateKey('rsa2048').privateKey;
  assertVerifies('rsa', pemB64, 'pycrypto-pkcs#1 pss', (k, m) => pssSign(k, m), privateKey, other);
  const key = loadVerifierKey('rsa', pemB64);
  assert.equal(key.verify('rsapss', message, pssSign(privateKey, message)), false);
  assert.equal(key.identity, loadVerifierKey('rsa', spkiB64(publicKey)).identity);
});

test('ed25519 keys (raw 32 bytes) verify eddsa signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  const other = generateKeyPairSync('ed25519').privateKey;
  assertVerifies('ed25519', raw, 'eddsa', edSign, privateKey, other);
  const key = loadVerifierKey('ed25519', raw);
  assert.equal(key.verify('ecdsa', message, edSign(privateKey, message)), false);
});

test('unusable key material is a KeyError', () => {
  const rsa1024 = generateKey('rsa1024');
  assert.throws(() => loadVerifierKey('rsa', spkiB64(rsa1024.publicKey)), KeyError);
  assert.throws(() => loadVerifierKey('rsa-x509', makeCert({ cn: 'x', key: rsa1024 }).b64), KeyError);
  const p384 = generateKey('p384');
  assert.throws(() => loadVerifierKey('ecdsa', spkiB64(p384.publicKey)), KeyError);
  assert.throws(() => loadVerifierKey('ecdsa-x509', makeCert({ cn: 'x', key: p384 }).b64), KeyError);
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  assert.throws(() => loadVerifierKey('ecdsa', spkiB64(k1)), KeyError);

  const p256 = spkiB64(generateKey('p256').publicKey);
  const rsa = spkiB64(generateKey('rsa2048').publicKey);
  assert.throws(() => loadVerifierKey('rsa', p256), KeyError, 'EC key listed as rsa');
  assert.throws(() => loadVerifierKey('ecdsa', rsa), KeyError, 'RSA key listed as ecdsa');
  assert.throws(() => loadVerifierKey('ecdsa-x509', p256), KeyError, 'bare key listed as certificate');
  assert.throws(() => loadVerifierKey('ECDSA', p256), KeyError, 'keytypes are case-sensitive');
  assert.throws(() => loadVerifierKey('dsa', p256), KeyError);
  assert.throws(() => loadVerifierKey('ecdsa', p256.slice(0, -4)), KeyError, 'truncated');
  assert.throws(() => loadVerifierKey('ecdsa', p256 + 'AAAA'), KeyError, 'trailing bytes');
  assert.throws(() => loadVerifierKey('ecdsa', '!!!!'), KeyError, 'not base64');
  assert.throws(() => loadVerifierKey('ecdsa', p256.replace(/=+$/, '')), KeyError, 'unpadded base64');
  assert.throws(() => loadVerifierKey('ed25519', Buffer.alloc(31).toString('base64')), KeyError);
  assert.throws(() => loadVerifierKey('ed25519', Buffer.alloc(33).toString('base64')), KeyError);
});
