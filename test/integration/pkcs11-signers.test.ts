/**
 * Server-held signers whose keys live in a PKCS#11 token (SoftHSM2): the key pair is generated
 * in the token, non-extractable and sensitive; the database row holds only the public key and
 * the objects' CKA_ID; signing calls sign in the token (C_Sign) and the published signature
 * verifies under the delegation certificate's key. Rotation and deletion remove the token's
 * objects. A token that cannot be opened as configured stops `signet serve` at start (exit 2,
 * one line).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, verify, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { rekeyServerKeys } from '../../src/service/rekey-server-keys.js';
import { KeyEncryptionKey, loadKeyEncryptionKey } from '../../src/signing/key-encryption.js';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { projectRoot } from '../support/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { catalogGrant, repoGrant, tokenSigner, type TokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, signFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const UTIL = 'softhsm2-util';
const SERVICE = 'signet.pkcs11.test';
const ISSUER = 'signet-pkcs11-test-issuer';
const GUN = 'localhost:5000/team/hsm';
const LABEL = 'signet-test';

const hasUtil = spawnSync(UTIL, ['--version'], { stdio: 'ignore' }).status === 0;
const present = existsSync(MODULE) && hasUtil;
// CI installs softhsm2 (.ci/run): there, its absence is a failure, not a reason to skip.
const skip = present || process.env['CI'] ? false : `needs SoftHSM2 (${MODULE} and ${UTIL}): apt-get install softhsm2`;

const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

describe('PKCS#11 signer keys (SoftHSM2)', { timeout: 180_000, skip }, () => {
  let work: string;
  let pinFile: string;
  let tokens: TokenSigner;
  let server: TestServer;
  let targetsKey: TestKey;
  const admin = () => `Bearer ${tokens.mint({ sub: 'admin', access: [repoGrant(GUN, '*'), catalogGrant('*')] })}`;
  const pusher = () => `Bearer ${tokens.mint({ sub: 'ci-pipeline', access: [repoGrant(GUN, 'push', 'pull')] })}`;
  const api = (method: 'get' | 'post' | 'delete', p: string, body?: unknown) => {
    let r = request(server.url)[method](`/api/v1/repositories/${GUN}/signers${p}`).set('Authorization', admin());
    if (body !== undefined) r = r.set('Content-Type', 'application/json').send(JSON.stringify(body));
    return r;
  };
  const token = () => server.context.keys.token!;

  const delegate = async (version: number, name: string, publicKey: string) => {
    const keyId = createHash('sha256')
      .update(JSON.stringify({ keytype: 'ecdsa-x509', keyval: { private: null, public: publicKey } }))
      .digest('hex');
    const key = { keytype: 'ecdsa-x509', publicB64: publicKey, keyId, privateKey: null };
    const doc = targetsDoc({
      version,
      delegations: [
        { name: `targets/${name}`, keys: [key] },
        { name: 'targets/releases', keys: [key] },
      ],
    });
    const { body, contentType } = multipartBody({ targets: signFile(doc, [targetsKey]) });
    const r = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin()).set('Content-Type', contentType).send(body);
    assert.equal(r.status, 200, r.text);
  };

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-pkcs11-'));
    const tokenDir = path.join(work, 'tokens');
    mkdirSync(tokenDir);
    const conf = path.join(work, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    // The module reads SOFTHSM2_CONF when it is initialised: in this process, and in the servers spawned below.
    process.env['SOFTHSM2_CONF'] = conf;
    const init = spawnSync(UTIL, ['--init-token', '--free', '--label', LABEL, '--pin', '1234', '--so-pin', '5678'], { encoding: 'utf8' });
    assert.equal(init.status, 0, `${init.stdout}${init.stderr}`);
    pinFile = path.join(work, 'pin');
    writeFileSync(pinFile, '1234\n', { mode: 0o600 });

    tokens = tokenSigner({ issuer: ISSUER, service: SERVICE });
    const bundle = path.join(work, 'token-ca.pem');
    writeFileSync(bundle, tokens.certPem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: 'https://auth.example.com/token',
      SIGNET_AUTH_SERVICE: SERVICE,
      SIGNET_AUTH_ISSUER: ISSUER,
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
      SIGNET_PKCS11_MODULE: MODULE,
      SIGNET_PKCS11_TOKEN_LABEL: LABEL,
      SIGNET_PKCS11_PIN_FILE: pinFile,
    });
    const key = async (role: string) =>
      serverKey(JSON.parse((await request(server.url).get(`/v2/${GUN}/_trust/tuf/${role}.key`).set('Authorization', admin())).text) as never);
    const rootKey = certKey({ commonName: GUN });
    targetsKey = ecdsaKey();
    const spec = { root: [rootKey], targets: [targetsKey], snapshot: [await key('snapshot')], timestamp: [await key('timestamp')] };
    const { body, contentType } = multipartBody({ root: signFile(rootDoc(spec), [rootKey]), targets: signFile(targetsDoc({}), [targetsKey]) });
    const res = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin()).set('Content-Type', contentType).send(body);
    assert.equal(res.status, 200, res.text);
  });
  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the key is generated in the token, never stored; a sign call signs there and the signature verifies', async () => {
    const created = await api('post', '', { name: 'ci' });
    assert.equal(created.status, 201, created.text);
    const s = created.body as { keyId: string; publicKey: string; certificate: string; keys: { keyId: string; backend: string }[] };
    assert.deepEqual(
      s.keys.map((k) => [k.keyId, k.backend]),
      [[s.keyId, 'pkcs11']],
    );
    assert.doesNotMatch(created.text, /PRIVATE/);
    // The certificate is self-signed by the token's key.
    const cert = new X509Certificate(s.certificate);
    assert.ok(cert.verify(cert.publicKey));

    // The row: the public key and the token reference, no private key, no KEK.
    const rows = await server.context.stores.signers.keys(GUN, 'ci');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.backend, 'pkcs11');
    assert.equal(rows[0]!.privateKey, null);
    assert.equal(rows[0]!.kekId, null);
    assert.equal(rows[0]!.pkcs11Id, s.keyId);
    // The token: a token object, sensitive, not extractable, labelled with repository, signer and key ID.
    assert.deepEqual(token().attributes(rows[0]!.pkcs11Id!), {
      token: true,
      sensitive: true,
      extractable: false,
      label: `signet ${GUN} signer ci key ${s.keyId}`,
    });

    await delegate(2, 'ci', s.publicKey);
    const r = await request(server.url)
      .post(`/api/v1/repositories/${GUN}/signers/ci/sign`)
      .set('Authorization', pusher())
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ tag: 'v1', digest: digestOf('one'), size: 10 }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      (r.body as { published: { role: string }[] }).published.map((p) => p.role),
      ['targets/ci', 'targets/releases', 'snapshot', 'timestamp'],
    );
    const published = await request(server.url).get(`/v2/${GUN}/_trust/tuf/targets/ci.json`).set('Authorization', pusher());
    assert.equal(published.status, 200, published.text);
    const file = JSON.parse(published.text) as {
      signed: { targets: Record<string, { length: number }> };
      signatures: { keyid: string; method: string; sig: string }[];
    };
    assert.equal(file.signed.targets['v1']!.length, 10);
    assert.equal(file.signatures.length, 1);
    const sig = file.signatures[0]!;
    assert.equal(sig.keyid, s.keyId);
    assert.equal(sig.method, 'ecdsa');
    // notary's ECDSA signatures: raw r‖s (64 bytes for P-256) over the canonical JSON of `signed`.
    const raw = Buffer.from(sig.sig, 'base64');
    assert.equal(raw.length, 64);
    assert.ok(verify('sha256', canonicalJson(file.signed), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, raw), 'signature verifies');
  });

  test('rotation makes a new key in the token and removes the old one; delete removes the rest', async () => {
    const old = (await api('get', '/ci')).body as { keyId: string };
    const rotated = await api('post', '/ci/rotate', { graceSeconds: 0 });
    assert.equal(rotated.status, 200, rotated.text);
    const next = rotated.body as { keyId: string; keys: { keyId: string; backend: string }[] };
    assert.notEqual(next.keyId, old.keyId);
    assert.deepEqual(
      next.keys.map((k) => [k.keyId, k.backend]),
      [[next.keyId, 'pkcs11']],
    );
    assert.equal(token().attributes(old.keyId), null, 'the old key is gone from the token');
    assert.equal(token().attributes(next.keyId)?.extractable, false);

    const deleted = await api('delete', '/ci');
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal(token().attributes(next.keyId), null, 'deleting the signer removes its key from the token');
  });

  test('keys rekey leaves keys held in the token alone and counts them as skipped', async () => {
    const created = await api('post', '', { name: 'rk' });
    assert.equal(created.status, 201, created.text);
    const keyId = (created.body as { keyId: string }).keyId;
    const current = loadKeyEncryptionKey(undefined, server.config.SIGNET_DATA_DIR);
    const report = await rekeyServerKeys(server.context.database, { current, next: new KeyEncryptionKey(randomBytes(32)) });
    assert.equal(report.signerKeys, 0, 'no signer key sealed under the KEK');
    assert.ok(report.tokenSignerKeys >= 1);
    assert.equal(report.tokenSignerKeys, await server.context.stores.signers.countInToken());
    const [row] = await server.context.stores.signers.keys(GUN, 'rk');
    assert.equal(row!.privateKey, null);
    assert.equal(row!.kekId, null);
    assert.equal(token().attributes(keyId)?.extractable, false, 'still in the token');
  });

  test('a token that cannot be opened stops signet serve at start: one line, exit 2', async () => {
    const main = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');
    const wrongPin = path.join(work, 'wrong-pin');
    writeFileSync(wrongPin, '9999\n');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNET_') && k !== 'DATABASE_URL'));
    const cases: { env: Record<string, string>; line: RegExp }[] = [
      { env: { SIGNET_PKCS11_PIN_FILE: wrongPin }, line: /^SIGNET_PKCS11_PIN_FILE: the token "signet-test" refused the PIN \(CKR_PIN_INCORRECT\)$/ },
      { env: { SIGNET_PKCS11_MODULE: path.join(work, 'missing.so') }, line: /^SIGNET_PKCS11_MODULE .*missing\.so cannot be loaded as a PKCS#11 module: / },
      { env: { SIGNET_PKCS11_TOKEN_LABEL: 'nope' }, line: /^SIGNET_PKCS11_TOKEN_LABEL: no token labelled "nope" in .* \(initialised tokens: "signet-test"\)$/ },
      { env: { SIGNET_PKCS11_PIN_FILE: path.join(work, 'no-pin') }, line: /^SIGNET_PKCS11_PIN_FILE .*no-pin cannot be read: ENOENT$/ },
      { env: { SIGNET_PKCS11_TOKEN_LABEL: '' }, line: /SIGNET_PKCS11_MODULE, SIGNET_PKCS11_TOKEN_LABEL and SIGNET_PKCS11_PIN_FILE must be set together/ },
    ];
    for (const [i, c] of cases.entries()) {
      const dataDir = path.join(work, `data-${i}`);
      const env = {
        ...clean,
        SIGNET_PORT: '0',
        SIGNET_LOG_LEVEL: 'error',
        SIGNET_EXPIRY_SCAN_INTERVAL: '0',
        SIGNET_DATA_DIR: dataDir,
        SIGNET_PKCS11_MODULE: MODULE,
        SIGNET_PKCS11_TOKEN_LABEL: LABEL,
        SIGNET_PKCS11_PIN_FILE: pinFile,
        ...c.env,
      };
      const child = spawn(process.execPath, [main, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('exit', (n) => {
          clearTimeout(timer);
          resolve(n);
        });
      });
      const lines = stderr.split('\n').filter((l) => l && !l.startsWith('{'));
      assert.equal(code, 2, `case ${i}: exit code; stderr:\n${stderr}`);
      assert.equal(lines.length, 1, `case ${i}: one line; stderr:\n${stderr}`);
      assert.match(lines[0]!, c.line, `case ${i}`);
      assert.doesNotMatch(stderr, /\b(1234|9999)\b/, `case ${i}: no PIN in the output`);
      assert.equal(stdout.includes('signet listening'), false);
    }
  });
});
