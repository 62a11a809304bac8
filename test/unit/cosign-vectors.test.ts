/**
 * Signet's Cosign formats against Sigstore's published vectors (test/fixtures/cosign, sources in
 * SOURCES.md): the simple-signing payload bytes of sigstore/sigstore's tests, real cosign
 * tag-format signatures (Connaisseur's test data), and key-signed bundles of sigstore-js and
 * sigstore-go with the Rekor keys of their trusted roots.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  checkTagSignature,
  parseBundle,
  parseSimpleSigningPayload,
  readCosignPublicKey,
  simpleSigningPayload,
  verifyBundleSignature,
  type TagSignature,
} from '../../src/cosign/index.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../test/fixtures/cosign');
const text = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
const json = <T>(name: string) => JSON.parse(text(name)) as T;

function tagSignature(payload: string, signature: string): TagSignature {
  const bytes = Buffer.from(payload);
  return {
    payload: bytes,
    signature: Buffer.from(signature, 'base64'),
    signatureBase64: signature,
    layerDigest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    annotations: {},
  };
}

function rekorKeys(trustedRoot: string): KeyObject[] {
  const root = json<{ tlogs: { publicKey: { rawBytes: string } }[] }>(trustedRoot);
  return root.tlogs.map((t) => createPublicKey({ key: Buffer.from(t.publicKey.rawBytes, 'base64'), format: 'der', type: 'spki' }));
}

describe('simple-signing payloads (sigstore/sigstore payload_test.go)', () => {
  const cases =
    json<{ desc: string; dockerReference: string; digest: string; annotations: Record<string, unknown> | null; expected: string }[]>('payloads.json');
  for (const c of cases) {
    test(`marshals "${c.desc}" to Go's bytes`, () => {
      assert.equal(simpleSigningPayload(c.dockerReference, c.digest, c.annotations).toString(), c.expected);
    });
  }
  const parsed = json<{ desc: string; payload: string; valid: boolean; digest: string; dockerReference: string }[]>('payloads-unmarshal.json');
  for (const c of parsed) {
    test(`reads "${c.desc}"`, () => {
      const p = parseSimpleSigningPayload(Buffer.from(c.payload));
      // sigstore/sigstore refuses a payload of another type; Signet reads it and checkTagSignature refuses it.
      assert.equal(p.type === 'cosign container image signature', c.valid);
      if (c.valid) {
        assert.equal(p.digest, c.digest);
        assert.equal(p.dockerReference, c.dockerReference);
      }
    });
  }
  test("the spec's own capitalised Docker-manifest-digest is read as Go's decoder reads it", () => {
    const p = parseSimpleSigningPayload(
      Buffer.from(
        '{"critical":{"identity":{"docker-reference":"r"},"image":{"Docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}',
      ),
    );
    assert.equal(p.digest, 'sha256:ab');
  });
});

describe('tag-format signatures made by cosign (Connaisseur test data)', () => {
  const one = json<{ publicKeyPem: string; payload: string; signature: string; image: string; nonMatchingPublicKeyPem: string }>('legacy-signature.json');
  const digest = one.image.split('@')[1]!;

  test('verifies with the signer key and names the digest', () => {
    const check = checkTagSignature(tagSignature(one.payload, one.signature), digest, readCosignPublicKey(one.publicKeyPem));
    assert.deepEqual(check, { valid: true, annotations: null });
  });
  test('does not verify with another key', () => {
    assert.equal(checkTagSignature(tagSignature(one.payload, one.signature), digest, readCosignPublicKey(one.nonMatchingPublicKeyPem)).valid, false);
  });
  test('does not count for another digest, although the signature is valid', () => {
    const check = checkTagSignature(tagSignature(one.payload, one.signature), `sha256:${'0'.repeat(64)}`, readCosignPublicKey(one.publicKeyPem));
    assert.equal(check.valid, false);
    assert.match(check.reason!, /signed payload is for sha256:071bf7a9/);
  });
  test('a payload changed by one byte does not verify', () => {
    const tampered = one.payload.replace('testimage', 'testimagf');
    assert.equal(checkTagSignature(tagSignature(tampered, one.signature), digest, readCosignPublicKey(one.publicKeyPem)).valid, false);
  });
  test('three signers on one payload: each signature verifies with its own key only', () => {
    const multi = json<{ image: string; payload: string; signatures: { signature: string; verifiesWith: string }[] }>('legacy-signatures-multi.json');
    const d = multi.image.split('@')[1]!;
    const keys = Object.fromEntries(['alice', 'bob', 'charlie'].map((n) => [n, readCosignPublicKey(text(`connaisseur-${n}.pub`))]));
    for (const s of multi.signatures) {
      const valid = Object.entries(keys)
        .filter(([, k]) => checkTagSignature(tagSignature(multi.payload, s.signature), d, k).valid)
        .map(([n]) => n);
      assert.deepEqual(valid, [s.verifiesWith]);
    }
  });
});

describe('key-signed bundles of sigstore-js and sigstore-go', () => {
  test('a DSSE bundle with a Rekor entry: verified against the Rekor key of its trusted root', () => {
    const bundle = parseBundle(Buffer.from(text('sigstore-js-client-v1-dsse-public-key.sigstore.json')));
    const key = readCosignPublicKey(text('sigstore-js-client-key-1.pub'));
    assert.deepEqual(verifyBundleSignature(bundle, key, { rekorKeys: rekorKeys('sigstore-js-verify-trusted-root.json') }), { valid: true, tlog: 'verified' });
  });
  test('the same bundle without a Rekor key: the signature verifies, the entry is set aside and said so', () => {
    const bundle = parseBundle(Buffer.from(text('sigstore-js-client-v1-dsse-public-key.sigstore.json')));
    assert.deepEqual(verifyBundleSignature(bundle, readCosignPublicKey(text('sigstore-js-client-key-1.pub'))), { valid: true, tlog: 'ignored' });
  });
  test('a Rekor key that did not log the entry makes it fail', () => {
    const bundle = parseBundle(Buffer.from(text('sigstore-js-client-v1-dsse-public-key.sigstore.json')));
    const wrongLog = [readCosignPublicKey(text('connaisseur-alice.pub'))];
    const check = verifyBundleSignature(bundle, readCosignPublicKey(text('sigstore-js-client-key-1.pub')), { rekorKeys: wrongLog });
    assert.equal(check.valid, false);
    assert.match(check.reason!, /transparency-log entry does not verify/);
  });
  test("sigstore-go's npm publish bundle verifies with its key and the public-good Rekor key", () => {
    const bundle = parseBundle(Buffer.from(text('sigstore-go-bundle-publish.sigstore.json')));
    const check = verifyBundleSignature(bundle, readCosignPublicKey(text('sigstore-go-publish_key.pub')), {
      rekorKeys: rekorKeys('sigstore-go-trusted-root-public-good.json'),
    });
    assert.deepEqual(check, { valid: true, tlog: 'verified' });
  });
  test('a message-signature bundle verifies over its artifact and not over another', () => {
    const bundle = parseBundle(Buffer.from(text('sigstore-js-v1-message-signature-public-key.sigstore.json')));
    const key = readCosignPublicKey(text('sigstore-js-verify-public-key.pub'));
    const rekor = { rekorKeys: rekorKeys('sigstore-js-verify-trusted-root.json') };
    assert.equal(verifyBundleSignature(bundle, key, { ...rekor, artifact: Buffer.from('hello, world!') }).valid, true);
    assert.equal(verifyBundleSignature(bundle, key, { ...rekor, artifact: Buffer.from('hello, world?') }).valid, false);
  });
  test('a bundle signed with a certificate is not a key signature', () => {
    const bundle = parseBundle(Buffer.from(text('cosign-oci-attestation.sigstore.json')));
    const check = verifyBundleSignature(bundle, readCosignPublicKey(text('connaisseur-alice.pub')));
    assert.equal(check.valid, false);
    assert.match(check.reason!, /certificate/);
  });
  test('garbage is BAD_SIGNATURE_DATA', () => {
    assert.throws(
      () => parseBundle(Buffer.from('{"mediaType":"nope"}')),
      (e: { code?: string }) => e.code === 'BAD_SIGNATURE_DATA',
    );
    assert.throws(
      () => parseBundle(Buffer.from('not json')),
      (e: { code?: string }) => e.code === 'BAD_SIGNATURE_DATA',
    );
  });
});
