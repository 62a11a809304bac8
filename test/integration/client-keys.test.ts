/**
 * Signet's key files against the real tools (Debian's `notary` 0.7 and the docker CLI, which CI
 * installs; no docker engine needed): keys Signet writes are listed, decrypted, exported,
 * imported and signed with by `notary`, in a whole `notary` publish against Signet; keys
 * `docker trust key generate` writes are loaded and signed with by Signet, byte for byte the
 * file Signet would write; `docker trust key load` takes a key from Signet.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import {
  decodePrivateKeyPem,
  dockerTrustDir,
  encodeNotaryPlainPrivateKeyPem,
  encodeNotaryPrivateKeyPem,
  envPassphrases,
  generateSigningKey,
  KeyStore,
  KeyStoreError,
  publicKeyPem,
  rootCertificate,
  ROOT_CERTIFICATE_VALIDITY_MS,
  type KeyInfo,
  type KeyMaterial,
} from '../../src/client/keys/index.js';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { loadVerifierKey } from '../../src/tuf/core/keys.js';
import { countValidSignatures, type SignatureEntry } from '../../src/tuf/core/signatures.js';
import { startTestServer, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'signet-client-keys-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (name: string) => {
  const dir = path.join(tmp, `${name}-${dirs++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

const PASSPHRASES = {
  NOTARY_ROOT_PASSPHRASE: 'root passphrase',
  NOTARY_TARGETS_PASSPHRASE: 'targets passphrase',
  NOTARY_SNAPSHOT_PASSPHRASE: 'snapshot passphrase',
  NOTARY_DELEGATION_PASSPHRASE: 'delegation passphrase',
};

/** Run a tool with nothing of the caller's home or docker config: a fresh HOME, only PATH kept. */
async function tool(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: path.join(tmp, 'home'), ...env },
      timeout: 120_000,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

/** The rows of `notary key list`: ROLE, GUN (may be blank), KEY ID, LOCATION. */
async function notaryKeyList(trustDir: string): Promise<{ role: string; gun?: string; keyId: string }[]> {
  const out = await tool('notary', ['-d', trustDir, 'key', 'list']);
  const rows = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!/^[0-9a-f]{64}$/.test(f.at(-2) ?? '')) continue;
    rows.push(f.length === 4 ? { role: f[0]!, gun: f[1]!, keyId: f[2]! } : { role: f[0]!, keyId: f[1]! });
  }
  return rows.sort((a, b) => a.keyId.localeCompare(b.keyId));
}

const asRows = (keys: KeyInfo[]) =>
  keys.map((k) => ({ role: k.role, ...(k.gun ? { gun: k.gun } : {}), keyId: k.keyId })).sort((a, b) => a.keyId.localeCompare(b.keyId));

const message = Buffer.from('{"_type":"Targets","version":7}');
function assertVerifies(keytype: string, publicB64: string, entry: SignatureEntry, signed: Buffer = message): void {
  const verifier = loadVerifierKey(keytype, publicB64, entry.keyid);
  assert.equal(countValidSignatures(signed, [entry], new Map([[entry.keyid, verifier]])), 1, `signature by ${entry.keyid} does not verify`);
}

/** The salt and IV of a notary key file, to rewrite it byte for byte. */
function encryptionParameters(pem: string): { salt: Buffer; iv: Buffer } {
  const der = Buffer.from(
    pem
      .split('\n')
      .filter((l) => l && !l.startsWith('-----') && !l.includes(':'))
      .join(''),
    'base64',
  );
  return { salt: der.subarray(35, 43), iv: der.subarray(62, 78) };
}

describe('notary reads and writes the keys Signet writes', { timeout: 300_000 }, () => {
  test('`notary key list` shows each Signet key with its role and GUN, and `notary key passwd` decrypts it', async () => {
    const dir = freshDir('notary');
    const store = new KeyStore(dir);
    const keys: [KeyMaterial, { role: string; gun?: string }, string][] = [
      [generateSigningKey(), { role: 'root' }, PASSPHRASES.NOTARY_ROOT_PASSPHRASE],
      [generateSigningKey(), { role: 'targets', gun: 'example.com/app' }, PASSPHRASES.NOTARY_TARGETS_PASSPHRASE],
      [generateSigningKey(), { role: 'snapshot', gun: 'example.com/app' }, PASSPHRASES.NOTARY_SNAPSHOT_PASSPHRASE],
      [generateSigningKey('ed25519'), { role: 'targets/releases' }, PASSPHRASES.NOTARY_DELEGATION_PASSPHRASE],
    ];
    for (const [key, info, passphrase] of keys) store.save(key, info, passphrase);
    assert.deepEqual(await notaryKeyList(dir), asRows(store.list()));

    // passwd decrypts with the current passphrase (the env var) and re-encrypts with the new one (the same).
    for (const [key] of keys) assert.match(await tool('notary', ['-d', dir, 'key', 'passwd', key.keyId], PASSPHRASES), /Successfully updated passphrase/);
    // …and a wrong passphrase is refused by notary: the encryption is real.
    await assert.rejects(tool('notary', ['-d', dir, 'key', 'passwd', keys[0]![0].keyId], { ...PASSPHRASES, NOTARY_ROOT_PASSPHRASE: 'wrong passphrase' }));
    // Signet still reads the files notary rewrote.
    for (const [key, info, passphrase] of keys) {
      const loaded = store.load(key.keyId, passphrase);
      assert.equal(loaded.role, info.role);
      assert.equal(loaded.gun, info.gun);
    }
  });

  test('`notary key export` then `notary key import` carries Signet keys to another directory; notary imports Signet’s unencrypted PEMs and Signet loads the result', async () => {
    const from = freshDir('export');
    const store = new KeyStore(from);
    store.save(generateSigningKey(), { role: 'targets', gun: 'example.com/app' }, PASSPHRASES.NOTARY_TARGETS_PASSPHRASE);
    store.save(generateSigningKey('ed25519'), { role: 'targets/qa' }, PASSPHRASES.NOTARY_DELEGATION_PASSPHRASE);
    const bundle = path.join(from, 'export.pem');
    await tool('notary', ['-d', from, 'key', 'export', '-o', bundle]);
    const to = freshDir('import');
    await tool('notary', ['-d', to, 'key', 'import', bundle], PASSPHRASES);
    assert.deepEqual(asRows(new KeyStore(to).list()), asRows(store.list()));
    assert.deepEqual(await notaryKeyList(to), asRows(store.list()));

    for (const keytype of ['ecdsa', 'ed25519'] as const) {
      const key = generateSigningKey(keytype);
      const file = path.join(from, `${keytype}.pem`);
      writeFileSync(file, encodeNotaryPlainPrivateKeyPem(key, { role: `targets/${keytype}` }), { mode: 0o600 });
      await tool('notary', ['-d', to, 'key', 'import', file], PASSPHRASES);
      const loaded = new KeyStore(to).load(key.keyId, PASSPHRASES.NOTARY_DELEGATION_PASSPHRASE);
      assert.equal(loaded.role, `targets/${keytype}`);
      assertVerifies(keytype, key.tufPublic().keyval.public, loaded.sign(message));
    }
  });
});

describe('a whole notary publish against Signet with Signet-made keys', { timeout: 300_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  test("notary initialises with Signet's root key and root certificate, and signs a delegation with Signet's key", async () => {
    const dir = freshDir('publish');
    const store = new KeyStore(dir);
    const gun = `localhost:5000/keys/app-${Date.now()}`;
    const notary = (...args: string[]) => tool('notary', ['-d', dir, '-s', server.url, ...args], PASSPHRASES);
    const fetchJson = async (role: string) => {
      const res = await fetch(`${server.url}/v2/${gun}/_trust/tuf/${role}.json`);
      assert.equal(res.status, 200, role);
      return (await res.json()) as { signed: any; signatures: SignatureEntry[] };
    };

    const root = generateSigningKey();
    store.save(root, { role: 'root' }, PASSPHRASES.NOTARY_ROOT_PASSPHRASE);
    const now = Date.now();
    const cert = rootCertificate(root, gun, { notBeforeMs: now, notAfterMs: now + ROOT_CERTIFICATE_VALIDITY_MS });
    const certFile = path.join(dir, 'root.crt');
    writeFileSync(certFile, cert.pem);
    await notary('init', gun, '--rootcert', certFile, '-p');

    // root.json lists exactly Signet's certificate, and the root signature is by Signet's key.
    const rootJson = await fetchJson('root');
    assert.deepEqual(rootJson.signed.roles.root.keyids, [cert.keyId]);
    assert.equal(rootJson.signed.keys[cert.keyId].keyval.public, cert.tufPublic.keyval.public);
    const rootSig = rootJson.signatures.find((s) => s.keyid === cert.keyId);
    assert.ok(rootSig);
    assertVerifies('ecdsa-x509', cert.tufPublic.keyval.public, rootSig, canonicalJson(rootJson.signed));
    // notary made no root key of its own.
    assert.deepEqual(
      store.findByRole('root').map((k) => k.keyId),
      [root.keyId],
    );

    // The targets key notary generated is one Signet loads and signs with, as root.json lists it.
    const [targetsInfo] = store.findByRole('targets', gun);
    assert.ok(targetsInfo, 'notary wrote a targets key');
    const targetsKey = await store.unlock(targetsInfo.keyId, envPassphrases(PASSPHRASES, false));
    const listed = rootJson.signed.keys[rootJson.signed.roles.targets.keyids[0]];
    assert.equal(targetsKey.keyId, rootJson.signed.roles.targets.keyids[0]);
    assertVerifies(listed.keytype, listed.keyval.public, targetsKey.sign(message));

    // A delegation whose key Signet made: notary finds it in the directory and signs with it.
    const releases = generateSigningKey();
    store.save(releases, { role: 'targets/releases' }, PASSPHRASES.NOTARY_DELEGATION_PASSPHRASE);
    const releasesCert = rootCertificate(releases, 'releases', { notBeforeMs: now, notAfterMs: now + ROOT_CERTIFICATE_VALIDITY_MS });
    const releasesCertFile = path.join(dir, 'releases.crt');
    writeFileSync(releasesCertFile, releasesCert.pem);
    await notary('delegation', 'add', gun, 'targets/releases', releasesCertFile, '--all-paths', '-p');
    const payload = path.join(dir, 'payload.txt');
    writeFileSync(payload, 'signed with a key Signet wrote\n');
    await notary('add', gun, 'v1', payload, '--roles', 'targets/releases', '-p');
    assert.match(await notary('list', gun), /^v1\s.*targets\/releases/m);

    const delegated = await fetchJson('targets/releases');
    assert.ok(delegated.signed.targets.v1);
    const delegationSig = delegated.signatures.find((s) => s.keyid === releasesCert.keyId);
    assert.ok(delegationSig, 'signed under the certificate key ID');
    assertVerifies('ecdsa-x509', releasesCert.tufPublic.keyval.public, delegationSig, canonicalJson(delegated.signed));
  });
});

describe('docker trust and Signet share keys', { timeout: 300_000 }, () => {
  const REPO_PASS = 'repository passphrase';

  test('`docker trust key generate` writes a key Signet lists, loads and signs with; Signet would write the same bytes and the same NAME.pub', async () => {
    const config = freshDir('docker');
    const pubs = freshDir('pubs');
    const env = { DOCKER_CONFIG: config, DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: REPO_PASS };
    await tool('docker', ['trust', 'key', 'generate', 'alice', '--dir', pubs], env);

    const store = new KeyStore(dockerTrustDir(env));
    const [info, ...others] = store.list();
    assert.ok(info);
    assert.deepEqual(others, []);
    assert.equal(info.role, 'alice');
    assert.equal(info.gun, undefined);

    const key = await store.unlock(info.keyId, envPassphrases(env, false));
    assert.equal(key.keyId, info.keyId);
    assert.equal(key.keytype, 'ecdsa');
    // Verified against the public key docker wrote, with the server's verifiers.
    const pub = readFileSync(path.join(pubs, 'alice.pub'), 'latin1');
    const pubDer = Buffer.from(
      pub
        .split('\n')
        .filter((l) => l && !l.startsWith('-----') && !l.includes(':'))
        .join(''),
      'base64',
    );
    assertVerifies('ecdsa', pubDer.toString('base64'), key.sign(message));
    assert.equal(publicKeyPem(key, 'alice'), pub);
    // Same salt and IV: the file Signet writes is docker's, byte for byte.
    const file = readFileSync(info.path, 'latin1');
    assert.equal(encodeNotaryPrivateKeyPem(key, { role: 'alice' }, REPO_PASS, encryptionParameters(file)), file);

    await assert.rejects(
      store.unlock(info.keyId, envPassphrases({ DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'wrong passphrase' }, false)),
      (e: unknown) => e instanceof KeyStoreError && e.code === 'PASSPHRASE_WRONG' && e.message.includes(info.path) && !e.message.includes('wrong passphrase'),
    );
  });

  test('`docker trust key load` takes a key Signet exported, and Signet reads back what docker stored', async () => {
    // docker re-encrypts what it loads; it loads unencrypted PEMs (an encrypted PKCS#8 file it
    // decrypts and then drops, storing nothing: docker cli's decodePrivKeyIfNecessary), so that is
    // the form Signet hands it.
    const config = freshDir('docker-load');
    const env = { DOCKER_CONFIG: config, DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: REPO_PASS };
    const key = generateSigningKey();
    const file = path.join(freshDir('export'), 'bob.pem');
    writeFileSync(file, encodeNotaryPlainPrivateKeyPem(key, { role: 'bob' }));
    chmodSync(file, 0o600); // docker refuses key files others can read
    assert.match(await tool('docker', ['trust', 'key', 'load', file, '--name', 'bob'], env), /Successfully imported key/);

    const store = new KeyStore(dockerTrustDir(env));
    assert.deepEqual(
      store.list().map((k) => [k.keyId, k.role]),
      [[key.keyId, 'bob']],
    );
    const loaded = store.load(key.keyId, REPO_PASS);
    assertVerifies('ecdsa', key.tufPublic().keyval.public, loaded.sign(message));
    assert.deepEqual(readdirSync(path.join(dockerTrustDir(env), 'private')), [`${key.keyId}.key`]);
    // And what docker stored decodes as a notary file: encrypted, role header, no GUN.
    const decoded = decodePrivateKeyPem(readFileSync(path.join(dockerTrustDir(env), 'private', `${key.keyId}.key`)), REPO_PASS);
    assert.deepEqual([decoded.encrypted, decoded.role, decoded.gun], [true, 'bob', undefined]);
  });
});
