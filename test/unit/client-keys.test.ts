/**
 * The client's key files (src/client/keys): notary's encrypted PKCS#8 written and read, the key
 * directory, passphrase sources, root certificates and docker's public key file. The real
 * `notary` and `docker trust` tools read and write the same files in
 * test/integration/client-keys.test.ts.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { inspect } from 'node:util';
import { after, describe, test } from 'node:test';
import {
  decodePrivateKeyPem,
  encodeNotaryPlainPrivateKeyPem,
  encodeNotaryPrivateKeyPem,
  envPassphrases,
  generateSigningKey,
  keyFromPrivate,
  KeyStore,
  KeyStoreError,
  passphraseVariables,
  publicKeyPem,
  readPrivateKeyHeaders,
  rootCertificate,
  ROOT_CERTIFICATE_VALIDITY_MS,
  type KeyMaterial,
  type PassphraseTerminal,
} from '../../src/client/keys/index.js';
import { tbsCertificateDer } from '../../src/tuf/core/certificate-writer.js';
import { parseCertificateBundle } from '../../src/tuf/core/certificates.js';
import { canonicalKeyId, loadVerifierKey } from '../../src/tuf/core/keys.js';
import { countValidSignatures } from '../../src/tuf/core/signatures.js';
import { loadRootCertificateKey } from '../../src/tuf/notary/x509.js';
import { notarySessionDir } from '../support/paths.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'signet-keys-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(tmp, `trust-${dirs++}`);

const message = Buffer.from('{"_type":"Targets","version":1}');
const PASS = 'correct horse battery';

/** The key's signature over `message` checks out with the verifiers the server uses. */
function assertSignsVerifiably(key: KeyMaterial): void {
  const pub = key.tufPublic();
  const verifier = loadVerifierKey(pub.keytype, pub.keyval.public);
  assert.equal(verifier.keyId, key.keyId);
  const entry = key.sign(message);
  assert.equal(entry.keyid, key.keyId);
  assert.equal(countValidSignatures(message, [entry], new Map([[key.keyId, verifier]])), 1);
  assert.equal(countValidSignatures(Buffer.from('other'), [entry], new Map([[key.keyId, verifier]])), 0);
}

function assertKeyStoreError(fn: () => unknown, code: string, pattern?: RegExp, label = ''): KeyStoreError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof KeyStoreError, `${label}: expected KeyStoreError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `${label}: ${caught.message}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/** The DER inside the first PEM block of `text`. */
const pemBytes = (text: string) =>
  Buffer.from(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('-----') && !l.includes(':'))
      .join(''),
    'base64',
  );

describe('keys in memory', () => {
  for (const keytype of ['ecdsa', 'ed25519'] as const) {
    test(`a generated ${keytype} key signs as notary does and its ID is the TUF key ID`, () => {
      const key = generateSigningKey(keytype);
      assert.equal(key.keytype, keytype);
      assert.match(key.keyId, /^[0-9a-f]{64}$/);
      assertSignsVerifiably(key);
      const entry = key.sign(message);
      assert.equal(entry.method, keytype === 'ecdsa' ? 'ecdsa' : 'eddsa');
      assert.equal(Buffer.from(entry.sig, 'base64').length, 64); // raw r‖s for ecdsa, not DER
    });
  }

  test('the TUF public key is SPKI DER for ecdsa and the raw 32 bytes for ed25519', () => {
    const ec = generateSigningKey('ecdsa');
    assert.deepEqual(Buffer.from(ec.tufPublic().keyval.public, 'base64'), ec.publicKey.export({ type: 'spki', format: 'der' }));
    const ed = generateSigningKey('ed25519');
    assert.equal(Buffer.from(ed.tufPublic().keyval.public, 'base64').length, 32);
    assert.equal(ed.tufPublic().keyval.private, null);
  });

  test('a key shows no private material when logged or serialised', () => {
    const key = generateSigningKey();
    const d = key.publicKey.export({ format: 'jwk' });
    assert.ok(d.x);
    const privateD = (
      createPrivateKey(encodeNotaryPlainPrivateKeyPem(key, { role: 'x' }).replace(/role: x\n\n/, '')).export({ format: 'jwk' }) as { d: string }
    ).d;
    for (const text of [JSON.stringify(key), inspect(key, { depth: 5, showHidden: true })]) assert.ok(!text.includes(privateD));
  });

  test('an RSA key from elsewhere signs with rsapss; other curves are refused', () => {
    const rsa = keyFromPrivate(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    assert.equal(rsa.keytype, 'rsa');
    assert.equal(rsa.sign(message).method, 'rsapss');
    assertSignsVerifiably(rsa);
    assertKeyStoreError(() => keyFromPrivate(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey), 'KEY_UNSUPPORTED', /P-256/);
    assertKeyStoreError(() => keyFromPrivate(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey), 'KEY_UNSUPPORTED', /2048/);
  });
});

describe("notary's key file format", () => {
  test('the encrypted DER is PBES2 / PBKDF2-HMAC-SHA1 / 8-byte salt / 2048 rounds / AES-256-CBC, as notary writes it', () => {
    const key = generateSigningKey();
    const salt = Buffer.from('0102030405060708', 'hex');
    const iv = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'hex');
    const pem = encodeNotaryPrivateKeyPem(key, { role: 'targets', gun: 'docker.io/library/app' }, PASS, { salt, iv });
    // Go's pem.Encode: headers sorted, then a blank line.
    assert.match(
      pem,
      /^-----BEGIN ENCRYPTED PRIVATE KEY-----\ngun: docker\.io\/library\/app\nrole: targets\n\n[A-Za-z0-9+/=\n]+-----END ENCRYPTED PRIVATE KEY-----\n$/,
    );
    assert.ok(pem.split('\n').every((l) => l.length <= 64));
    const der = pemBytes(pem);
    // SEQ{ SEQ{ pbes2, SEQ{ SEQ{ pbkdf2, SEQ{ salt, 2048 } }, SEQ{ aes256cbc, iv } } }, OCTET … } — no prf field.
    const expectedHead =
      '3081ee' +
      '3049' +
      '06092a864886f70d01050d' +
      '303c' +
      '301b' +
      '06092a864886f70d01050c' +
      '300e' +
      '0408' +
      salt.toString('hex') +
      '02020800' +
      '301d' +
      '060960864801650304012a' +
      '0410' +
      iv.toString('hex') +
      '0481a0';
    assert.equal(der.subarray(0, expectedHead.length / 2).toString('hex'), expectedHead);
    // OpenSSL reads it too (HMAC-SHA1 is PBKDF2's default PRF), giving back the same key.
    const viaOpenssl = createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase: PASS });
    assert.equal(keyFromPrivate(viaOpenssl).keyId, key.keyId);
  });

  test('the inner key is notary’s: ECDSA version 1 with the curve in the SEC1 key, ed25519 under notary’s OID as public ‖ seed ‖ public', () => {
    const ec = generateSigningKey('ecdsa');
    const ecInner = pemBytes(encodeNotaryPlainPrivateKeyPem(ec, { role: 'r' }));
    // version 1, [ecPublicKey, prime256v1], then SEC1 version 1 … [0] prime256v1 [1] the public point.
    assert.equal(ecInner.subarray(3, 27).toString('hex'), '020101301306072a8648ce3d020106082a8648ce3d030107');
    assert.ok(ecInner.toString('hex').includes('a00a06082a8648ce3d030107a144034200'));
    const ed = generateSigningKey('ed25519');
    const edInner = pemBytes(encodeNotaryPlainPrivateKeyPem(ed, { role: 'r' }));
    assert.equal(edInner.subarray(0, 20).toString('hex'), '3072020100300b06092b06010401da470f010460');
    assert.equal(edInner.length, 20 + 96);
    const raw = edInner.subarray(edInner.length - 96);
    const pub = Buffer.from(ed.tufPublic().keyval.public, 'base64');
    assert.deepEqual(raw.subarray(0, 32), pub);
    assert.deepEqual(raw.subarray(64), pub);
  });

  for (const keytype of ['ecdsa', 'ed25519'] as const) {
    test(`${keytype}: encode then decode gives the same key, role and GUN`, () => {
      const key = generateSigningKey(keytype);
      const decoded = decodePrivateKeyPem(encodeNotaryPrivateKeyPem(key, { role: 'snapshot', gun: 'example.com/app' }, PASS), PASS);
      assert.equal(decoded.key.keyId, key.keyId);
      assert.equal(decoded.role, 'snapshot');
      assert.equal(decoded.gun, 'example.com/app');
      assert.equal(decoded.encrypted, true);
      assertSignsVerifiably(decoded.key);
      const plain = decodePrivateKeyPem(encodeNotaryPlainPrivateKeyPem(key, { role: 'alice' }));
      assert.equal(plain.key.keyId, key.keyId);
      assert.equal(plain.encrypted, false);
    });
  }

  test('a wrong passphrase is PASSPHRASE_WRONG naming the source, never echoing the passphrase', () => {
    const pem = encodeNotaryPrivateKeyPem(generateSigningKey(), { role: 'root' }, PASS);
    for (let i = 0; i < 20; i++) {
      const err = assertKeyStoreError(() => decodePrivateKeyPem(pem, `not the passphrase ${i}`, '/keys/abc.key'), 'PASSPHRASE_WRONG', /\/keys\/abc\.key/);
      assert.ok(!err.message.includes('not the passphrase'));
      assert.ok(!err.message.includes(PASS));
    }
    assertKeyStoreError(() => decodePrivateKeyPem(pem, undefined, 'k'), 'PASSPHRASE_REQUIRED');
    assertKeyStoreError(() => decodePrivateKeyPem(pem, '', 'k'), 'PASSPHRASE_REQUIRED');
    assertKeyStoreError(() => encodeNotaryPrivateKeyPem(generateSigningKey(), { role: 'root' }, ''), 'PASSPHRASE_REQUIRED');
  });

  test('truncated, garbled or foreign PEM is KEY_UNREADABLE, never a crash', () => {
    const pem = encodeNotaryPrivateKeyPem(generateSigningKey(), { role: 'root' }, PASS);
    const lines = pem.split('\n');
    const cases: Record<string, string> = {
      empty: '',
      'no PEM': 'hello world\n',
      'no END line': lines.slice(0, 4).join('\n'),
      'bad base64': pem.replace(/\n\n[A-Za-z0-9]/, '\n\n!'),
      'DER cut short': lines.slice(0, 4).join('\n') + '\n-----END ENCRYPTED PRIVATE KEY-----\n',
      'a certificate': '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n',
      'garbage DER': '-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n',
      'garbage EC key': '-----BEGIN EC PRIVATE KEY-----\nMAMCAQE=\n-----END EC PRIVATE KEY-----\n',
    };
    for (const [name, text] of Object.entries(cases)) {
      const err = assertKeyStoreError(() => decodePrivateKeyPem(text, PASS, 'the file'), 'KEY_UNREADABLE', undefined, name);
      assert.match(err.message, /^the file: /, name);
      // Listing reads only the PEM headers, as notary does: a broken PEM fails it, broken DER not yet.
      if (!/DER|EC key/.test(name)) assertKeyStoreError(() => readPrivateKeyHeaders(text, 'the file'), 'KEY_UNREADABLE', undefined, name);
    }
    // Ciphertext flipped: indistinguishable from a wrong passphrase, and reported as such.
    const der = pemBytes(pem);
    der[der.length - 20]! ^= 0xff;
    const flipped = `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${der.toString('base64')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
    assertKeyStoreError(() => decodePrivateKeyPem(flipped, PASS), 'PASSPHRASE_WRONG');
  });

  test('standard PKCS#8 (encrypted with any HMAC-SHA PRF, or not), SEC1 and PKCS#1, also legacy-encrypted, are read for key load', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const ed = generateKeyPairSync('ed25519').privateKey;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forms: [string, string, string | undefined][] = [
      ['pkcs8 ec', ec.export({ type: 'pkcs8', format: 'pem' }) as string, undefined],
      ['pkcs8 ec, aes-256-cbc (HMAC-SHA256 PRF)', ec.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS }) as string, PASS],
      ['pkcs8 ec, aes-128-cbc', ec.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-128-cbc', passphrase: PASS }) as string, PASS],
      ['pkcs8 ed25519, encrypted', ed.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS }) as string, PASS],
      ['sec1', ec.export({ type: 'sec1', format: 'pem' }) as string, undefined],
      ['sec1, DEK-Info', ec.export({ type: 'sec1', format: 'pem', cipher: 'aes-128-cbc', passphrase: PASS }) as string, PASS],
      ['pkcs1', rsa.export({ type: 'pkcs1', format: 'pem' }) as string, undefined],
      ['pkcs8 rsa, encrypted', rsa.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASS }) as string, PASS],
    ];
    for (const [name, pem, passphrase] of forms) {
      const decoded = decodePrivateKeyPem(pem, passphrase, name);
      assert.equal(decoded.encrypted, passphrase !== undefined, name);
      assertSignsVerifiably(decoded.key);
      if (passphrase) assertKeyStoreError(() => decodePrivateKeyPem(pem, 'wrong passphrase', name), 'PASSPHRASE_WRONG');
    }
    // And written back in notary's format, an RSA key keeps its ID.
    const rsaKey = keyFromPrivate(rsa);
    assert.equal(decodePrivateKeyPem(encodeNotaryPrivateKeyPem(rsaKey, { role: 'targets/rsa' }, PASS), PASS).key.keyId, rsaKey.keyId);
  });
});

describe('the key directory', () => {
  test('save writes <trustDir>/private/<keyID>.key, 0600 in 0700, and list/has/findByRole/load read it back', () => {
    const dir = freshDir();
    const store = new KeyStore(dir);
    assert.deepEqual(store.list(), []);
    const root = generateSigningKey();
    const targets = generateSigningKey();
    const delegation = generateSigningKey('ed25519');
    const rootPath = store.save(root, { role: 'root', gun: 'ignored/for/root' }, PASS);
    store.save(targets, { role: 'targets', gun: 'example.com/app' }, PASS);
    store.save(delegation, { role: 'targets/releases', gun: 'ignored' }, 'another passphrase');
    assert.equal(rootPath, path.join(dir, 'private', `${root.keyId}.key`));
    assert.equal(statSync(rootPath).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dir, 'private')).mode & 0o777, 0o700);
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    const listed = store.list();
    assert.equal(listed.length, 3);
    const byId = new Map(listed.map((k) => [k.keyId, k]));
    // notary keeps the GUN only for targets, snapshot and timestamp keys.
    assert.deepEqual(byId.get(root.keyId), { keyId: root.keyId, role: 'root', path: rootPath });
    assert.equal(byId.get(targets.keyId)!.gun, 'example.com/app');
    assert.equal(byId.get(delegation.keyId)!.gun, undefined);
    assert.ok(!readFileSync(rootPath, 'latin1').includes('gun:'));

    assert.ok(store.has(targets.keyId));
    assert.ok(!store.has('0'.repeat(64)));
    assert.deepEqual(
      store.findByRole('targets', 'example.com/app').map((k) => k.keyId),
      [targets.keyId],
    );
    assert.deepEqual(store.findByRole('targets', 'other/gun'), []);

    const loaded = store.load(delegation.keyId, 'another passphrase');
    assert.equal(loaded.role, 'targets/releases');
    assert.equal(loaded.keytype, 'ed25519');
    assertSignsVerifiably(loaded);
    const loadedTargets = store.load(targets.keyId, PASS);
    assert.equal(loadedTargets.gun, 'example.com/app');
    assertSignsVerifiably(loadedTargets);

    assertKeyStoreError(() => store.load(root.keyId, 'wrong passphrase'), 'PASSPHRASE_WRONG', new RegExp(`${root.keyId}\\.key`));
    assertKeyStoreError(() => store.load(root.keyId), 'PASSPHRASE_REQUIRED');
    assertKeyStoreError(() => store.load('f'.repeat(64), PASS), 'KEY_NOT_FOUND');
    assertKeyStoreError(() => store.load('../../etc/passwd', PASS), 'KEY_NOT_FOUND');

    store.remove(root.keyId);
    assert.ok(!store.has(root.keyId));
    assertKeyStoreError(() => store.remove(root.keyId), 'KEY_NOT_FOUND');
  });

  test('a targets, snapshot or timestamp key needs its GUN; any key needs a role', () => {
    const store = new KeyStore(freshDir());
    assertKeyStoreError(() => store.save(generateSigningKey(), { role: 'targets' }, PASS), 'KEY_ROLE_INVALID');
    assertKeyStoreError(() => store.save(generateSigningKey(), { role: '' }, PASS), 'KEY_ROLE_INVALID');
  });

  test('list skips files that are not private keys; load refuses a file holding another key than its name', () => {
    const dir = freshDir();
    const store = new KeyStore(dir);
    const key = generateSigningKey();
    const file = store.save(key, { role: 'alice' }, PASS);
    writeFileSync(path.join(dir, 'private', 'notes.txt'), 'hello');
    writeFileSync(path.join(dir, 'private', 'broken.key'), 'not a key');
    writeFileSync(path.join(dir, 'private', 'cert.key'), '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n');
    assert.deepEqual(
      store.list().map((k) => k.keyId),
      [key.keyId],
    );
    const other = 'a'.repeat(64);
    writeFileSync(path.join(dir, 'private', `${other}.key`), readFileSync(file));
    assertKeyStoreError(() => store.load(other, PASS), 'KEY_UNREADABLE', new RegExp(`holds the key ${key.keyId}`));
    assertKeyStoreError(() => store.load('broken', PASS), 'KEY_UNREADABLE');
  });

  test('writes are atomic: no temporary file is left, a failed write leaves nothing behind', () => {
    const dir = freshDir();
    const store = new KeyStore(dir);
    const key = generateSigningKey();
    store.save(key, { role: 'alice' }, PASS);
    store.save(key, { role: 'bob' }, PASS); // replaced whole
    assert.deepEqual(readdirSync(path.join(dir, 'private')), [`${key.keyId}.key`]);
    assert.equal(store.load(key.keyId, PASS).role, 'bob');

    // A directory where the file should go: the rename fails after the temporary file was written.
    const blocked = generateSigningKey();
    mkdirSync(path.join(dir, 'private', `${blocked.keyId}.key`));
    assertKeyStoreError(() => store.save(blocked, { role: 'alice' }, PASS), 'KEY_WRITE_FAILED');
    assert.deepEqual(readdirSync(path.join(dir, 'private')).sort(), [`${blocked.keyId}.key`, `${key.keyId}.key`].sort());
    assert.deepEqual(readdirSync(path.join(dir, 'private', `${blocked.keyId}.key`)), []);
  });

  test('unlock asks the passphrase source for the file’s role, and retries a wrong answer only when a new one comes', async () => {
    const store = new KeyStore(freshDir());
    const key = generateSigningKey();
    store.save(key, { role: 'targets', gun: 'example.com/app' }, PASS);
    const asked: string[] = [];
    const answers = ['wrong one', PASS];
    const prompting = {
      get: async (role: string, _id: string, o: { create: boolean; attempt?: number }) => (asked.push(`${role}:${o.attempt}`), answers.shift()!),
    };
    assert.equal((await store.unlock(key.keyId, prompting)).keyId, key.keyId);
    assert.deepEqual(asked, ['targets:0', 'targets:1']);

    let calls = 0;
    const constant = { get: async () => (calls++, 'always wrong') };
    await assert.rejects(store.unlock(key.keyId, constant), (e: unknown) => e instanceof KeyStoreError && e.code === 'PASSPHRASE_WRONG');
    assert.equal(calls, 2); // the same answer twice: no third ask
  });
});

describe('passphrase sources', () => {
  test('the variables docker and notary read, docker first', () => {
    assert.deepEqual(passphraseVariables('root'), ['DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE', 'NOTARY_ROOT_PASSPHRASE']);
    assert.deepEqual(passphraseVariables('targets'), ['DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE', 'NOTARY_TARGETS_PASSPHRASE']);
    assert.deepEqual(passphraseVariables('snapshot'), ['DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE', 'NOTARY_SNAPSHOT_PASSPHRASE']);
    assert.deepEqual(passphraseVariables('timestamp'), ['DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE']);
    assert.deepEqual(passphraseVariables('targets/releases'), ['DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE', 'NOTARY_DELEGATION_PASSPHRASE']);
    assert.deepEqual(passphraseVariables('alice'), ['DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE', 'NOTARY_DELEGATION_PASSPHRASE']);
  });

  test('from the environment, empty meaning unset; with neither variable nor terminal, PASSPHRASE_REQUIRED naming the variables', async () => {
    const source = envPassphrases(
      { NOTARY_ROOT_PASSPHRASE: 'n-root', DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: '', NOTARY_TARGETS_PASSPHRASE: 'n-targets' },
      false,
    );
    assert.equal(await source.get('root', 'id', { create: false }), 'n-root');
    assert.equal(await source.get('targets', 'id', { create: true }), 'n-targets');
    const docker = envPassphrases({ DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'd-repo', NOTARY_TARGETS_PASSPHRASE: 'n-targets' }, false);
    assert.equal(await docker.get('targets', 'id', { create: false }), 'd-repo');
    assert.equal(await docker.get('alice', 'id', { create: false }), 'd-repo');
    await assert.rejects(
      source.get('snapshot', 'abc123', { create: false }),
      (e: unknown) =>
        e instanceof KeyStoreError &&
        e.code === 'PASSPHRASE_REQUIRED' &&
        /DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE or NOTARY_SNAPSHOT_PASSPHRASE/.test(e.message) &&
        !e.message.includes('n-root'),
    );
  });

  /** A stand-in terminal that types `lines` one per prompt and records what is shown. */
  function fakeTerminal(lines: string[]): PassphraseTerminal & { shown: () => string; raw: boolean[] } {
    const input = new PassThrough() as unknown as PassphraseTerminal['input'] & PassThrough;
    const raw: boolean[] = [];
    input.isTTY = true;
    input.setRawMode = (mode: boolean) => raw.push(mode);
    let shown = '';
    const output = new PassThrough();
    output.on('data', (c: Buffer) => {
      shown += c.toString();
      // Type the next answer once a prompt appears.
      if (/: $/.test(shown) && lines.length) setImmediate(() => input.write(lines.shift()!));
    });
    return { input, output, shown: () => shown, raw };
  }

  test('on a terminal: no echo, a new key’s passphrase asked twice, too short or mismatched asked again, answers remembered per role', async () => {
    const term = fakeTerminal(['short\r', 'long enough one\r', 'different one\r', ' long enough one \r', 'long enough one\r', 'x\u007fexisting\n']);
    const source = envPassphrases({}, term);
    assert.equal(await source.get('targets', '0123456789abcdef', { create: true }), 'long enough one');
    assert.match(term.shown(), /Enter passphrase for new targets key with ID 0123456: /);
    assert.match(term.shown(), /too short/);
    assert.match(term.shown(), /do not match/);
    assert.ok(!term.shown().includes('long enough one'), 'the passphrase is never echoed');
    assert.equal(await source.get('targets', 'other', { create: false }), 'long enough one'); // remembered
    assert.equal(await source.get('root', 'feedbeef', { create: false }), 'existing'); // backspace removed the x
    assert.ok(term.raw.length >= 2 && term.raw.at(-1) === false, 'raw mode switched off again');
  });

  test('on a terminal, Ctrl-C is PASSPHRASE_REQUIRED', async () => {
    const source = envPassphrases({}, fakeTerminal(['abc\u0003']));
    await assert.rejects(source.get('root', 'id', { create: false }), (e: unknown) => e instanceof KeyStoreError && e.code === 'PASSPHRASE_REQUIRED');
  });
});

describe('public forms of a key', () => {
  test("publicKeyPem is docker's NAME.pub: PUBLIC KEY with a role header over the SPKI", () => {
    const key = generateSigningKey();
    const pem = publicKeyPem(key, 'alice');
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\nrole: alice\n\n/);
    assert.equal(createPublicKey(pem.replace('role: alice\n\n', '')).export({ type: 'spki', format: 'der' }).toString('base64'), key.tufPublic().keyval.public);
  });

  test('rootCertificate: a notary root certificate for the GUN, listed as ecdsa-x509, whose canonical ID is the key file’s', () => {
    const key = generateSigningKey();
    const gun = 'docker.io/library/app';
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const cert = rootCertificate(key, gun, { notBeforeMs: now, notAfterMs: now + ROOT_CERTIFICATE_VALIDITY_MS });
    assert.equal(cert.tufPublic.keytype, 'ecdsa-x509');
    assert.equal(Buffer.from(cert.tufPublic.keyval.public, 'base64').toString('latin1'), cert.pem);
    assert.equal(canonicalKeyId('ecdsa-x509', cert.tufPublic.keyval.public), key.keyId);
    const [parsed] = parseCertificateBundle(cert.pem);
    assert.equal(parsed!.commonName, gun);
    assert.equal(parsed!.isCA, false);
    assert.equal(parsed!.notBefore.getTime(), now - 678);
    assert.equal(parsed!.notAfter.getTime() - parsed!.notBefore.getTime(), 10 * 365 * 86400_000);

    // As notary's ValidateRoot sees it: the key ID it recomputes is ours, and a root signature under it counts.
    const loaded = loadRootCertificateKey('ecdsa-x509', cert.tufPublic.keyval.public, gun, { checkExpiry: true, now: new Date(now + 1000) });
    assert.ok(loaded.key, 'reason' in loaded ? loaded.reason : '');
    assert.equal(loaded.key.keyId, cert.keyId);
    const entry = key.sign(message, cert.keyId);
    assert.equal(entry.keyid, cert.keyId);
    assert.equal(countValidSignatures(message, [entry], new Map([[cert.keyId, loaded.key]])), 1);
    assert.equal(loadRootCertificateKey('ecdsa-x509', cert.tufPublic.keyval.public, 'other/gun', { checkExpiry: false, now: new Date() }).key, null);

    assertKeyStoreError(() => rootCertificate(generateSigningKey('ed25519'), gun, { notBeforeMs: now, notAfterMs: now + 1000 }), 'KEY_UNSUPPORTED');
  });

  test('the certificate fields are byte for byte those notary 0.7 wrote for a real root', () => {
    // The root certificate in the recorded notary session: rebuild its TBSCertificate from its
    // serial, times, GUN and public key, and compare.
    const root = JSON.parse(readFileSync(path.join(notarySessionDir, 'metadata', 'root.json'), 'utf8'));
    const id = root.signed.roles.root.keyids[0];
    const [fixture] = parseCertificateBundle(Buffer.from(root.signed.keys[id].keyval.public, 'base64').toString('latin1'));
    const der = fixture!.der;
    const tbsLength = der.readUInt16BE(6) + 4; // 30 82 LL LL inside 30 82 LL LL
    const tbs = der.subarray(4, 4 + tbsLength);
    const serial = tbs.subarray(11, 28); // after 30 82 LL LL a0 03 02 01 02 02 11: 00 and a 16-byte serial with its top bit set
    const rebuilt = tbsCertificateDer({
      commonName: fixture!.commonName,
      subject: fixture!.publicKey,
      issuer: { commonName: fixture!.commonName, privateKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey },
      notBefore: fixture!.notBefore,
      notAfter: fixture!.notAfter,
      serial,
      keyUsage: ['digitalSignature', 'keyEncipherment'],
      extKeyUsage: ['codeSigning'],
    });
    assert.equal(rebuilt.toString('hex'), tbs.toString('hex'));
  });
});
