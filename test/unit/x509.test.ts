import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tufKeyId } from '../../src/tuf/core/keys.js';
import { CertificateError, encodeCertificatesPem, parseCertificateBundle, type Certificate } from '../../src/tuf/core/certificates.js';
import { loadRootCertificateKey, validateCertificate } from '../../src/tuf/notary/x509.js';
import { notarySessionDir } from '../support/paths.js';
import { makeCert } from '../support/openssl.js';

const GUN = 'docker.io/fixtures/app';
const DAY = 24 * 60 * 60 * 1000;
const b64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');

function fixtureRoot(name: string) {
  const signed = JSON.parse(readFileSync(path.join(notarySessionDir, 'metadata', name), 'utf8')).signed;
  const id: string = signed.roles.root.keyids[0];
  return { id, key: signed.keys[id] as { keytype: string; keyval: { public: string } } };
}

function mustLoad(keytype: string, publicB64: string, gun: string, checkExpiry = true, now = new Date()) {
  const loaded = loadRootCertificateKey(keytype, publicB64, gun, { checkExpiry, now });
  assert.ok(loaded.key, `expected a key, got: ${'reason' in loaded ? loaded.reason : ''}`);
  return loaded.key;
}

function mustRefuse(keytype: string, publicB64: string, gun: string, checkExpiry = true, now = new Date()) {
  const loaded = loadRootCertificateKey(keytype, publicB64, gun, { checkExpiry, now });
  assert.equal(loaded.key, null);
  assert.ok('reason' in loaded && loaded.reason.length > 0);
  return loaded.reason;
}

test('fixture root certificates load under their own key ID for the right GUN only', () => {
  for (const name of ['root.json', '1.root.json']) {
    const { id, key } = fixtureRoot(name);
    const now = new Date('2027-06-01T00:00:00Z');
    assert.equal(mustLoad(key.keytype, key.keyval.public, GUN, true, now).keyId, id);
    assert.equal(mustLoad(key.keytype, key.keyval.public, GUN, false, now).keyId, id);
    mustRefuse(key.keytype, key.keyval.public, 'docker.io/fixtures/other', true, now);
    mustRefuse(key.keytype, key.keyval.public, `${GUN}2`, true, now);
    // Expired by 2037 for a new root, but fine as an old root (no expiry check).
    mustRefuse(key.keytype, key.keyval.public, GUN, true, new Date('2037-01-01T00:00:00Z'));
    mustLoad(key.keytype, key.keyval.public, GUN, false, new Date('2037-01-01T00:00:00Z'));
  }
});

test('fixture root certificate fields, and Go-style PEM re-encoding round-trips', () => {
  const { key } = fixtureRoot('root.json');
  const pem = Buffer.from(key.keyval.public, 'base64').toString('latin1');
  const [cert, ...rest] = parseCertificateBundle(pem);
  assert.equal(rest.length, 0);
  const node = new X509Certificate(pem);
  assert.equal(cert!.commonName, GUN);
  assert.equal(cert!.isCA, false);
  assert.equal(cert!.signatureAlgorithmOid, '1.2.840.10045.4.3.2'); // ecdsa-with-SHA256
  assert.equal(cert!.notBefore.getTime(), Date.parse(node.validFrom));
  assert.equal(cert!.notAfter.getTime(), Date.parse(node.validTo));
  assert.deepEqual(cert!.der, node.raw);
  assert.equal(cert!.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.deepEqual(cert!.spkiDer, node.publicKey.export({ type: 'spki', format: 'der' }));
  assert.equal(encodeCertificatesPem([cert!]), pem);

  // The delegation certificate in the fixtures was made by openssl with CA:TRUE.
  const targets = JSON.parse(readFileSync(path.join(notarySessionDir, 'metadata', 'targets.json'), 'utf8'));
  const [delegationKey] = Object.values(targets.signed.delegations.keys) as { keyval: { public: string } }[];
  const [delegationCert] = parseCertificateBundle(Buffer.from(delegationKey!.keyval.public, 'base64').toString());
  assert.equal(delegationCert!.commonName, 'releases');
  assert.equal(delegationCert!.isCA, true);
});

test('CN must equal the GUN, or be a wildcard prefix of it', () => {
  const exact = makeCert({ cn: GUN });
  const key = mustLoad('ecdsa-x509', exact.b64, GUN);
  // openssl writes PEM exactly like Go, so the recomputed ID is the ID of the given text.
  assert.equal(key.keyId, tufKeyId('ecdsa-x509', exact.b64));
  const sig = sign('sha256', Buffer.from('msg'), { key: exact.privateKey, dsaEncoding: 'ieee-p1363' });
  assert.equal(key.verify('ecdsa', Buffer.from('msg'), sig), true);
  mustRefuse('ecdsa-x509', exact.b64, 'docker.io/fixtures/ap');
  mustRefuse('ecdsa-x509', exact.b64, 'docker.io/fixtures/app/sub');

  const wildcard = makeCert({ cn: 'docker.io/fixtures/*' });
  mustLoad('ecdsa-x509', wildcard.b64, GUN);
  mustLoad('ecdsa-x509', wildcard.b64, 'docker.io/fixtures/other');
  mustRefuse('ecdsa-x509', wildcard.b64, 'docker.io/elsewhere/app');
  mustRefuse('ecdsa-x509', wildcard.b64, 'docker.io/fixtures');
});

test('expiry is only checked when asked, with one day of leeway before NotBefore', () => {
  const cert = makeCert({ cn: GUN, days: 1 });
  const later = new Date(Date.now() + 3 * DAY);
  assert.match(mustRefuse('ecdsa-x509', cert.b64, GUN, true, later), /expired/);
  mustLoad('ecdsa-x509', cert.b64, GUN, false, later);
  mustLoad('ecdsa-x509', cert.b64, GUN, true, new Date(Date.now() - DAY / 2));
  mustRefuse('ecdsa-x509', cert.b64, GUN, true, new Date(Date.now() - 2 * DAY));
});

test('SHA-1 signed and short-RSA certificates are refused, RSA 2048 works', () => {
  const sha1 = makeCert({ cn: GUN, digest: 'sha1' });
  const [parsed] = parseCertificateBundle(sha1.pem);
  assert.equal(parsed!.signatureAlgorithmOid, '1.2.840.10045.4.1'); // ecdsa-with-SHA1
  assert.match(mustRefuse('ecdsa-x509', sha1.b64, GUN), /SHA1/);
  mustRefuse('ecdsa-x509', sha1.b64, GUN, false);

  const rsaSha1 = makeCert({ cn: GUN, key: 'rsa2048', digest: 'sha1' });
  assert.equal(parseCertificateBundle(rsaSha1.pem)[0]!.signatureAlgorithmOid, '1.2.840.113549.1.1.5');
  mustRefuse('rsa-x509', rsaSha1.b64, GUN, false);

  const rsa = makeCert({ cn: GUN, key: 'rsa2048' });
  const key = mustLoad('rsa-x509', rsa.b64, GUN);
  assert.equal(key.keytype, 'rsa-x509');
  assert.equal(parseCertificateBundle(rsa.pem)[0]!.signatureAlgorithmOid, '1.2.840.113549.1.1.11');
  mustRefuse('ecdsa-x509', rsa.b64, GUN); // keytype must match the certificate's key

  const short = makeCert({ cn: GUN, key: 'rsa1024' });
  assert.match(mustRefuse('rsa-x509', short.b64, GUN, false), /RSA bit length/);
});

test('bundles: one leaf, first; valid CA certificates after it are kept as intermediates', () => {
  const leaf = makeCert({ cn: GUN });
  const ca = makeCert({ cn: 'Some CA', ca: true, days: 3650 });
  const shortCa = makeCert({ cn: 'Short CA', ca: true, days: 2 });
  const otherLeaf = makeCert({ cn: GUN });

  assert.equal(parseCertificateBundle(ca.pem)[0]!.isCA, true);
  mustRefuse('ecdsa-x509', ca.b64, 'Some CA'); // a CA alone has no leaf
  mustRefuse('ecdsa-x509', b64(ca.pem + leaf.pem), GUN); // leaf not first
  mustRefuse('ecdsa-x509', b64(leaf.pem + otherLeaf.pem), GUN); // two leaves

  const bundle = b64(leaf.pem + ca.pem);
  assert.equal(mustLoad('ecdsa-x509', bundle, GUN).keyId, tufKeyId('ecdsa-x509', bundle));

  // An intermediate that fails validation is dropped for a new root, changing the key ID…
  const withShort = b64(leaf.pem + shortCa.pem + ca.pem);
  const later = new Date(Date.now() + 5 * DAY);
  assert.equal(mustLoad('ecdsa-x509', withShort, GUN, true, later).keyId, tufKeyId('ecdsa-x509', bundle));
  // …but an old root's bundle is used as it is.
  assert.equal(mustLoad('ecdsa-x509', withShort, GUN, false, later).keyId, tufKeyId('ecdsa-x509', withShort));
});

test('key ID is recomputed over Go-style PEM, not the text as given', () => {
  const leaf = makeCert({ cn: GUN });
  const crlf = b64(leaf.pem.replace(/\n/g, '\r\n'));
  const key = mustLoad('ecdsa-x509', crlf, GUN);
  assert.notEqual(key.keyId, tufKeyId('ecdsa-x509', crlf));
  assert.equal(key.keyId, tufKeyId('ecdsa-x509', leaf.b64));
});

test('anything but CERTIFICATE PEM is refused without throwing', () => {
  const leaf = makeCert({ cn: GUN });
  const publicKeyPem = leaf.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  assert.throws(() => parseCertificateBundle(leaf.pem + publicKeyPem), CertificateError);
  assert.throws(() => parseCertificateBundle('hello\n' + leaf.pem), CertificateError);
  assert.throws(() => parseCertificateBundle(leaf.pem.replace('-----END', 'xx\n-----END')), CertificateError);
  assert.throws(() => parseCertificateBundle(leaf.pem.slice(0, -30)), CertificateError);
  assert.throws(() => parseCertificateBundle(''), CertificateError);

  for (const bad of [
    b64(leaf.pem + publicKeyPem),
    b64(publicKeyPem),
    b64('garbage'),
    '!!!not base64!!!',
    leaf.b64.slice(0, -1),
    '',
    b64('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
  ]) {
    mustRefuse('ecdsa-x509', bad, GUN);
  }
  mustRefuse('ecdsa', leaf.b64, GUN); // root keys must be certificates
  mustRefuse('ed25519', leaf.b64, GUN);
});

test('malformed certificate DER never crashes the parser', () => {
  const der = parseCertificateBundle(makeCert({ cn: GUN }).pem)[0]!.der;
  const toPem = (bytes: Buffer) => encodeCertificatesPem([{ der: bytes } as Certificate]);
  let refused = 0;
  for (let len = 1; len < der.length; len += 3) {
    assert.throws(() => parseCertificateBundle(toPem(der.subarray(0, len))), CertificateError);
    refused++;
  }
  for (let i = 0; i < der.length; i++) {
    const mutated = Buffer.from(der);
    mutated[i]! ^= 0xff;
    try {
      parseCertificateBundle(toPem(mutated));
    } catch (err) {
      assert.ok(err instanceof CertificateError, `byte ${i}: ${String(err)}`);
      refused++;
    }
  }
  assert.ok(refused > der.length / 3);
});

test('validateCertificate rules', () => {
  const cert = parseCertificateBundle(makeCert({ cn: GUN, days: 10 }).pem)[0]!;
  const now = new Date();
  validateCertificate(cert, { checkExpiry: true, now });
  const inverted = { ...cert, notBefore: cert.notAfter, notAfter: cert.notBefore };
  assert.throws(() => validateCertificate(inverted, { checkExpiry: false, now }), /validity window/);
  const sha1 = { ...cert, signatureAlgorithmOid: '1.2.840.10040.4.3' };
  assert.throws(() => validateCertificate(sha1, { checkExpiry: false, now }), CertificateError);
  const after = new Date(cert.notAfter.getTime() + 1000);
  assert.throws(() => validateCertificate(cert, { checkExpiry: true, now: after }), /expired/);
  validateCertificate(cert, { checkExpiry: false, now: after });
  validateCertificate(cert, { checkExpiry: true, now: cert.notAfter });
});
