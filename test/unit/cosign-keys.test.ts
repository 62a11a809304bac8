/**
 * Cosign key files (src/cosign/keys.ts, key-source.ts) against keys made by the real cosign:
 * the encrypted keys of cosign's own tests (test/fixtures/cosign, see SOURCES.md) open with their
 * password, and the keys Signet writes have cosign's exact layout.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  COSIGN_PRIVATE_KEY_PEM,
  SIGSTORE_PRIVATE_KEY_PEM,
  cosignPassword,
  cosignPublicKeyPem,
  generateCosignKeyPair,
  loadSigningKey,
  loadVerificationKey,
  readCosignPrivateKey,
  readCosignPublicKey,
  writeCosignPrivateKey,
} from '../../src/cosign/index.js';
import { decodePem } from '../../src/client/keys/pem.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../test/fixtures/cosign');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');

async function rejects(promise: Promise<unknown>, code: string, pattern?: RegExp) {
  await assert.rejects(promise, (error: { code?: string; message: string }) => {
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('keys made by cosign', () => {
  for (const [file, label] of [
    ['sigstore-label.key', SIGSTORE_PRIVATE_KEY_PEM],
    ['cosign-label.key', COSIGN_PRIVATE_KEY_PEM],
  ] as const) {
    test(`${file} (${label}) opens with its password and signs`, async () => {
      const text = fixture(file);
      assert.ok(text.startsWith(`-----BEGIN ${label}-----`));
      const key = await readCosignPrivateKey(text, 'hello', file);
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      const message = Buffer.from('payload');
      assert.ok(verify('sha256', message, createPublicKey(key), sign('sha256', message, key)));
    });
  }

  test('a wrong password is PASSWORD_WRONG, and nothing of the password is in the message', async () => {
    await rejects(
      readCosignPrivateKey(fixture('sigstore-label.key'), 'hello-not', 'cosign.key'),
      'PASSWORD_WRONG',
      /^cosign.key: the password does not open it$/,
    );
  });

  test("cosign's negative vector: a key that opens to SEC1 rather than PKCS#8 is refused", async () => {
    await rejects(readCosignPrivateKey(fixture('sec1-rejected.key'), 'hello'), 'KEY_UNREADABLE', /not a PKCS#8 private key/);
  });

  test('an unencrypted or foreign PEM is not a cosign key', async () => {
    await rejects(readCosignPrivateKey(fixture('import-ecp256-pkcs8.key'), 'hello'), 'KEY_UNREADABLE', /PEM block of type "PRIVATE KEY"/);
    await rejects(readCosignPrivateKey('no pem here', ''), 'KEY_UNREADABLE', /no PEM block/);
  });
});

describe('keys Signet writes', () => {
  test('cosign.key has the SIGSTORE label and go-securesystemslib JSON in its field order, and opens again', async () => {
    const pair = await generateCosignKeyPair('secret');
    const block = decodePem(pair.privatePem, 'cosign.key')!;
    assert.equal(block.type, SIGSTORE_PRIVATE_KEY_PEM);
    assert.deepEqual(block.headers, {});
    const json = block.bytes.toString();
    assert.match(
      json,
      /^\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/=]+"\}$/,
    );
    const opened = await readCosignPrivateKey(pair.privatePem, 'secret');
    assert.equal(cosignPublicKeyPem(opened), pair.publicPem);
    assert.match(pair.publicPem, /^-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END PUBLIC KEY-----\n$/);
    assert.equal(readCosignPublicKey(pair.publicPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  test('an empty password is allowed (cosign allows it)', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = await writeCosignPrivateKey(privateKey, '', { scryptN: 32768 });
    assert.equal((await readCosignPrivateKey(pem, '')).asymmetricKeyType, 'ed25519');
  });

  test('scrypt costs cosign refuses are refused before any work', async () => {
    const pem = fixture('sigstore-label.key');
    const block = decodePem(pem, 'k')!;
    const json = JSON.parse(block.bytes.toString()) as { kdf: { params: { N: number } } };
    json.kdf.params.N = 1 << 24;
    const forged = `-----BEGIN ${SIGSTORE_PRIVATE_KEY_PEM}-----\n${Buffer.from(JSON.stringify(json)).toString('base64')}\n-----END ${SIGSTORE_PRIVATE_KEY_PEM}-----\n`;
    await rejects(readCosignPrivateKey(forged, 'hello'), 'KEY_UNSUPPORTED', /scrypt parameters/);
  });

  test('keys cosign does not use are refused: RSA below 2048 bits, other curves', () => {
    for (const file of ['import-rsa1024-rejected.key', 'import-ecp224-rejected.key']) {
      const key = createPublicKey(fixture(file));
      assert.throws(
        () => readCosignPublicKey(cosignPublicKeyPem(key)),
        (e: { code?: string }) => e.code === 'KEY_UNSUPPORTED',
      );
    }
  });
});

describe('key references and passwords', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'signet-cosign-keys-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--key is a file or env://NAME; COSIGN_PASSWORD opens it, even when empty', async () => {
    const pair = await generateCosignKeyPair('', { scryptN: 32768 });
    const env = { COSIGN_KEY: pair.privatePem, COSIGN_PUB: pair.publicPem, COSIGN_PASSWORD: '' };
    const fromEnv = await loadSigningKey('env://COSIGN_KEY', { env, terminal: false });
    assert.equal(cosignPublicKeyPem(fromEnv), pair.publicPem);
    writeFileSync(path.join(dir, 'cosign.pub'), pair.publicPem);
    const pub = await loadVerificationKey(path.join(dir, 'cosign.pub'), { env, terminal: false });
    assert.equal(cosignPublicKeyPem(pub), pair.publicPem);
    assert.equal(cosignPublicKeyPem(await loadVerificationKey('env://COSIGN_PUB', { env })), pair.publicPem);
  });

  test('without COSIGN_PASSWORD and without a terminal: PASSWORD_REQUIRED, not a hang', async () => {
    await rejects(cosignPassword('cosign.key', false, { env: {}, terminal: false }), 'PASSWORD_REQUIRED', /COSIGN_PASSWORD/);
  });

  test('unset variables, missing files and KMS URIs say what is wrong', async () => {
    await rejects(loadSigningKey('env://NOPE', { env: {}, terminal: false }), 'KEY_NOT_FOUND', /NOPE is not set/);
    await rejects(loadVerificationKey(path.join(dir, 'missing.pub')), 'KEY_NOT_FOUND', /no such file/);
    await rejects(loadSigningKey('awskms:///alias/x', { env: {}, terminal: false }), 'BAD_INPUT', /not supported/);
  });
});
