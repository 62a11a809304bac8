/**
 * Cosign signatures on a real registry (the Debian docker-registry, which has no referrers API, so
 * bundles are found through the `sha256-<hex>` tag-schema index), and sigstore-js as an
 * independent implementation of the bundle format: bundles Signet writes verify with
 * `@sigstore/verify` used directly, and bundles `@sigstore/sign` builds verify in Signet.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { assertBundleLatest, bundleFromJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder } from '@sigstore/sign';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import {
  BUNDLE_MEDIA_TYPE,
  buildSignatureBundle,
  checkBundle,
  cosignDockerReference,
  generateCosignKeyPair,
  parseBundle,
  publicKeyHint,
  signImageDigest,
  signMessage,
  signatureStatement,
  simpleSigningPayload,
  verifyCosignSignatures,
  writeStoredBundle,
  writeTagSignature,
  type CosignKeyPair,
} from '../../src/cosign/index.js';
import { RegistryClient, referrersTag } from '../../src/registry/index.js';
import { startReferrersProxy, type ReferrersProxy } from '../support/referrers-proxy.js';
import { startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';

const EMPTY_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

function sigstoreJsVerify(bundleJson: unknown, publicKey: KeyObject): void {
  const bundle = bundleFromJSON(bundleJson);
  assertBundleLatest(bundle);
  const trust = toTrustMaterial(EMPTY_ROOT as never, () => ({ publicKey, validFor: () => true }));
  new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
}

describe('bundles, Signet and sigstore-js', () => {
  let pair: CosignKeyPair;
  const digest = `sha256:${createHash('sha256').update('an image manifest').digest('hex')}`;
  before(async () => {
    pair = await generateCosignKeyPair('pw', { scryptN: 32768 });
  });

  test('a bundle Signet builds verifies with @sigstore/verify, and its statement is cosign 3’s', () => {
    const bytes = buildSignatureBundle(pair.privateKey, pair.publicKey, digest);
    const json = JSON.parse(bytes.toString()) as {
      mediaType: string;
      verificationMaterial: { publicKey: { hint: string } };
      dsseEnvelope: { payload: string; payloadType: string };
    };
    assert.equal(json.mediaType, BUNDLE_MEDIA_TYPE);
    assert.equal(json.verificationMaterial.publicKey.hint, publicKeyHint(pair.publicKey));
    assert.equal(json.dsseEnvelope.payloadType, 'application/vnd.in-toto+json');
    assert.deepEqual(JSON.parse(Buffer.from(json.dsseEnvelope.payload, 'base64').toString()), {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ digest: { sha256: digest.slice(7) }, annotations: {} }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    });
    sigstoreJsVerify(json, pair.publicKey);
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    assert.throws(() => sigstoreJsVerify(json, other), /signature/i);
  });

  test('a bundle @sigstore/sign builds with a cosign key verifies in Signet, for its digest only', async () => {
    const signer = {
      sign: async (data: Buffer) => ({
        signature: nodeSign('sha256', data, pair.privateKey),
        key: { $case: 'publicKey' as const, publicKey: pair.publicPem, hint: publicKeyHint(pair.publicKey) },
      }),
    };
    const bundle = await new DSSEBundleBuilder({ signer, witnesses: [] }).create({ data: signatureStatement(digest), type: 'application/vnd.in-toto+json' });
    const { bundleToJSON } = await import('@sigstore/bundle');
    const parsed = parseBundle(Buffer.from(JSON.stringify(bundleToJSON(bundle))));
    assert.deepEqual(checkBundle(parsed, digest, pair.publicKey), { valid: true, tlog: 'none' });
    const elsewhere = checkBundle(parsed, `sha256:${'1'.repeat(64)}`, pair.publicKey);
    assert.equal(elsewhere.valid, false);
    assert.match(elsewhere.reason!, /subject is not/);
    assert.equal(checkBundle(parsed, digest, (await generateCosignKeyPair('x', { scryptN: 32768 })).publicKey).valid, false);
  });
});

describe('signatures on a real registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let image: PushedImage;
  let ci: CosignKeyPair;
  let qa: CosignKeyPair;
  const repo = () => ({ registry: reg.host, repository: 'team/app' });

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient({ dockerConfigDir: '/nonexistent', certsDir: null });
    image = await reg.pushImage('team/app', 'v1');
    [ci, qa] = await Promise.all([generateCosignKeyPair('', { scryptN: 32768 }), generateCosignKeyPair('', { scryptN: 32768 })]);
  });
  after(async () => {
    client?.close();
    await reg?.stop();
  });

  test('an unsigned digest has no signatures in either format', async () => {
    const result = await verifyCosignSignatures(client, repo(), image.digest, { keys: new Map([['ci', ci.publicKey]]) });
    assert.deepEqual(result, { digest: image.digest, signers: [], evidence: [], problems: [], found: 0 });
  });

  test('signed in both formats by one key, in the tag format by another: each key counts once, with its evidence', async () => {
    const first = await signImageDigest(client, repo(), image.digest, ci.privateKey, { format: 'both' });
    assert.equal(first.tag?.written, true);
    assert.equal(first.tag?.tag, `${image.digest.replace(':', '-')}.sig`);
    assert.equal(first.bundle?.via, 'tag-schema');
    await signImageDigest(client, repo(), image.digest, qa.privateKey);
    const keys = new Map([
      ['ci', ci.publicKey],
      ['qa', qa.publicKey],
    ]);
    const result = await verifyCosignSignatures(client, repo(), image.digest, { keys });
    assert.deepEqual(result.signers.sort(), ['ci', 'qa']);
    assert.equal(result.found, 3);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.evidence.map((e) => `${e.key}:${e.format}`).sort(), ['ci:tag', 'qa:tag'], 'the first valid signature of a key is its evidence');
    const bundlesOnly = await verifyCosignSignatures(client, repo(), image.digest, { keys, formats: ['bundle'] });
    assert.deepEqual(bundlesOnly.evidence, [{ key: 'ci', format: 'bundle', tlog: 'none' }]);
  });

  test('the same signature written twice is stored once; another signature by the same key is added', async () => {
    const payload = simpleSigningPayload(cosignDockerReference(repo()), image.digest);
    const signatureBase64 = signMessage(qa.privateKey, payload).toString('base64');
    const before = (await verifyCosignSignatures(client, repo(), image.digest, { keys: new Map(), formats: ['tag'] })).found;
    assert.equal((await writeTagSignature(client, repo(), image.digest, { payload, signatureBase64 })).written, true);
    assert.equal((await writeTagSignature(client, repo(), image.digest, { payload, signatureBase64 })).written, false);
    const after = await verifyCosignSignatures(client, repo(), image.digest, { keys: new Map([['qa', qa.publicKey]]), formats: ['tag'] });
    assert.equal(after.found, before + 1);
    assert.deepEqual(after.signers, ['qa']);
  });

  test('the bundle is listed in the referrers tag-schema index, as a referrer of the image', async () => {
    const { descriptors, source } = await client.getReferrers(repo(), image.digest);
    assert.equal(source, 'tag-schema');
    assert.equal(descriptors.length, 1);
    assert.equal(descriptors[0]!.artifactType, BUNDLE_MEDIA_TYPE);
    const manifest = JSON.parse((await client.getManifest(client.at(repo(), descriptors[0]!.digest))).bytes.toString()) as { subject: { digest: string } };
    assert.equal(manifest.subject.digest, image.digest);
    const index = await client.getManifest(client.at(repo(), referrersTag(image.digest)));
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  });

  test('a second bundle is appended to the index, not put in place of the first', async () => {
    const bundle = buildSignatureBundle(qa.privateKey, qa.publicKey, image.digest);
    await writeStoredBundle(client, repo(), image.digest, bundle);
    const { descriptors } = await client.getReferrers(repo(), image.digest);
    assert.equal(descriptors.length, 2);
    const result = await verifyCosignSignatures(client, repo(), image.digest, {
      keys: new Map([
        ['qa', qa.publicKey],
        ['ci', ci.publicKey],
      ]),
      formats: ['bundle'],
    });
    assert.deepEqual(result.signers.sort(), ['ci', 'qa']);
  });

  test('signatures of one digest do not count for another image', async () => {
    const other = await reg.pushImage('team/app', 'v2');
    const result = await verifyCosignSignatures(client, repo(), other.digest, { keys: new Map([['ci', ci.publicKey]]) });
    assert.deepEqual(result.signers, []);
  });
});

describe('a registry with the referrers API', () => {
  let reg: TestRegistry;
  let proxy: ReferrersProxy;
  let client: RegistryClient;

  before(async () => {
    reg = await startRegistry();
    proxy = await startReferrersProxy(reg.host);
    client = new RegistryClient({ dockerConfigDir: '/nonexistent', certsDir: null });
  });
  after(async () => {
    client?.close();
    await proxy?.stop();
    await reg?.stop();
  });

  test('a bundle is found through the API, and no tag-schema index is written', async () => {
    const image = await reg.pushImage('team/api', 'v1');
    const repo = { registry: proxy.host, repository: 'team/api' };
    const key = await generateCosignKeyPair('', { scryptN: 32768 });
    const signed = await signImageDigest(client, repo, image.digest, key.privateKey, { format: 'bundle' });
    assert.equal(signed.bundle?.via, 'api');
    const referrers = await client.getReferrers(repo, image.digest);
    assert.equal(referrers.source, 'api');
    assert.equal(referrers.descriptors.length, 1);
    await assert.rejects(client.getManifest(client.at(repo, referrersTag(image.digest))), (e: { code?: string }) => e.code === 'NOT_FOUND');
    const result = await verifyCosignSignatures(client, repo, image.digest, { keys: new Map([['ci', key.publicKey]]) });
    assert.deepEqual(result.signers, ['ci']);
    assert.ok(proxy.referrersRequests() >= 2);
  });
});
