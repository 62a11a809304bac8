/**
 * Server-held signers administered with `signet signers …` on the store, re-keyed with
 * `signet keys rekey`, and two signing cases of their own: a signer that is the repository's
 * targets key (the tag goes into `targets`), and identity rules on a registry token's claims.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { tufKeyId } from '../../src/tuf/core/keys.js';
import { runSignet } from '../support/cli.js';
import { createRepository, postUpdate } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnServer, startTestServer } from '../support/server.js';
import { repoGrant, tokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, signFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

describe('signet signers and keys rekey', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let dir: string;
  const kekA = randomBytes(32).toString('hex');
  const kekB = randomBytes(32).toString('hex');
  const env = (kek: string) => ({
    SIGNET_DATA_DIR: database.dataDir,
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    SIGNET_KEY_ENCRYPTION_KEY: kek,
    SIGNET_LOG_LEVEL: 'error',
    SIGNET_EXPIRY_SCAN_INTERVAL: '0',
  });
  const signet = (kek: string, ...args: string[]) => runSignet(args, env(kek));

  before(async () => {
    database = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-signers-admin-'));
  });
  after(async () => {
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('create (with rules from a file), list, show, rotate, disable; usage mistakes exit 2; the keys survive a rekey and sign after it', async () => {
    const gun = 'registry.example.com/admin/app';
    const rulesFile = path.join(dir, 'rules.yaml');
    writeFileSync(rulesFile, 'identities:\n  - subject: "ci-*"\ntags: ["v*"]\n');
    const created = await signet(kekA, 'signers', 'create', gun, 'ci', '--rules', rulesFile, '--json');
    assert.equal(created.code, 0, created.stderr);
    const ci = JSON.parse(created.stdout) as { keyId: string; publicKey: string; certificate: string; rules: unknown };
    assert.deepEqual(ci.rules, { identities: [{ subject: 'ci-*' }], tags: ['v*'] });
    assert.doesNotMatch(created.stdout, /PRIVATE KEY/);
    const human = await signet(kekA, 'signers', 'create', gun, 'other');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /-----BEGIN CERTIFICATE-----/);
    assert.match(human.stdout, /signet trust signer add --server-held other registry\.example\.com\/admin\/app/);

    const listed = await signet(kekA, 'signers', 'list', gun);
    assert.match(listed.stdout, /signer ci: active/);
    assert.match(listed.stdout, /signer other: active/);
    for (const [args, message] of [
      [['signers', 'create', gun, 'Bad'], /signer name must match/],
      [['signers', 'delete', gun, 'other'], /--yes/],
      [['signers', 'rotate', gun, 'ci', '--grace', 'soon'], /--grace must be/],
      [['signers', 'create', gun, 'x', '--rules', path.join(dir, 'missing')], /cannot read --rules/],
    ] as const) {
      const r = await signet(kekA, ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const none = await signet(kekA, 'signers', 'show', gun, 'nobody');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no signer nobody/);
    assert.equal((await signet(kekA, 'signers', 'disable', gun, 'other')).code, 0);
    assert.equal((await signet(kekA, 'signers', 'delete', gun, 'other', '--yes')).code, 0);

    // Re-keyed: the signer's key is re-encrypted with the server keys.
    const fileB = path.join(dir, 'kek-b');
    writeFileSync(fileB, kekB + '\n', { mode: 0o600 });
    const rekeyed = await signet(kekA, 'keys', 'rekey', '--new-key-file', fileB, '--json');
    assert.equal(rekeyed.code, 0, rekeyed.stderr);
    const report = JSON.parse(rekeyed.stdout) as { keys: number; signerKeys: number; reencrypted: number };
    assert.deepEqual([report.keys, report.signerKeys, report.reencrypted], [1, 1, 1]);

    // A server under the new KEK signs with it.
    const server = await spawnServer({ ...env(kekB), SIGNET_PORT: '0' });
    try {
      const repo = await createRepository(server.url, gun, { serverSnapshot: true });
      const key: TestKey = { keytype: 'ecdsa-x509', publicB64: ci.publicKey, keyId: tufKeyId('ecdsa-x509', ci.publicKey), privateKey: null };
      const targets = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/ci', keys: [key] }] }), [repo.targetsKey]);
      assert.equal((await postUpdate(server.url, gun, { targets })).status, 200);
      const signed = await request(server.url)
        .post(`/api/v1/repositories/${gun}/signers/ci/sign`)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ tag: 'v1', digest: digest(1), size: 1 }));
      // Without authentication every caller is anonymous, which the rule on subjects refuses.
      assert.equal(signed.status, 403, signed.text);
      assert.match(signed.text, /anonymous/);
      await server.stop();
      const rules = path.join(dir, 'open.json');
      writeFileSync(rules, '{"tags": ["v*"]}');
      assert.equal((await signet(kekB, 'signers', 'rules', gun, 'ci', '--rules', rules)).code, 0);
      const again = await spawnServer({ ...env(kekB), SIGNET_PORT: '0' });
      try {
        const ok = await request(again.url)
          .post(`/api/v1/repositories/${gun}/signers/ci/sign`)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify({ tag: 'v1', digest: digest(1), size: 1 }));
        assert.equal(ok.status, 200, ok.text);
      } finally {
        await again.stop();
      }
    } finally {
      await server.stop().catch(() => {});
    }
    const audit = await signet(kekB, 'audit', '--signer', 'ci', '--json');
    const actions = (JSON.parse(audit.stdout) as { action: string; detail: { result?: string } }[]).map((r) => `${r.action}:${r.detail.result ?? ''}`);
    assert.deepEqual(actions, ['signer-sign:signed', 'update:', 'signer-rules:', 'signer-sign:refused', 'signer-create:']);
  });
});

describe('signing as the repository key, and rules on token claims', { timeout: 120_000 }, () => {
  let work: string;
  let server: Awaited<ReturnType<typeof startTestServer>>;
  const tokens = tokenSigner({ issuer: 'claims-issuer', service: 'claims-service' });
  const GUN = 'registry.example.com/claims/app';

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-signer-claims-'));
    const bundle = path.join(work, 'ca.pem');
    writeFileSync(bundle, tokens.certPem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: 'https://auth.example.com/token',
      SIGNET_AUTH_SERVICE: 'claims-service',
      SIGNET_AUTH_ISSUER: 'claims-issuer',
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
  });
  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const auth = (claims: Record<string, unknown>) => `Bearer ${tokens.mint({ sub: 'pipeline', access: [repoGrant(GUN, '*')], ...claims })}`;

  test('a signer whose key is the targets key signs into targets; claim conditions admit or refuse', async () => {
    const admin = auth({});
    const created = await request(server.url)
      .post(`/api/v1/repositories/${GUN}/signers`)
      .set('Authorization', admin)
      .set('Content-Type', 'application/json')
      .send(
        JSON.stringify({
          name: 'release',
          rules: { identities: [{ kind: 'registry-token', claims: { team: 'build-*', ref: ['refs/heads/main', 'refs/tags/**'] } }] },
        }),
      );
    assert.equal(created.status, 201, created.text);
    const s = created.body as { publicKey: string; keyId: string };
    const signerKey: TestKey = { keytype: 'ecdsa-x509', publicB64: s.publicKey, keyId: s.keyId, privateKey: null };

    // A repository whose targets key is the signer's: the owner rotated it to the server-held key.
    const key = async (role: string) => {
      const r = await request(server.url).get(`/v2/${GUN}/_trust/tuf/${role}.key`).set('Authorization', admin);
      const k = JSON.parse(r.text) as { keytype: string; keyval: { public: string } };
      return { keytype: k.keytype, publicB64: k.keyval.public, keyId: tufKeyId(k.keytype, k.keyval.public), privateKey: null } as TestKey;
    };
    const rootKey = certKey({ commonName: GUN });
    const firstTargets = ecdsaKey();
    const spec = { root: [rootKey], targets: [firstTargets], snapshot: [await key('snapshot')], timestamp: [await key('timestamp')] };
    const first = multipartBody({ root: signFile(rootDoc(spec), [rootKey]), targets: signFile(targetsDoc({}), [firstTargets]) });
    assert.equal(
      (await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin).set('Content-Type', first.contentType).send(first.body)).status,
      200,
    );
    const rotated = multipartBody({ root: signFile(rootDoc({ ...spec, version: 2, targets: [signerKey] }), [rootKey]) });
    const r = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin).set('Content-Type', rotated.contentType).send(rotated.body);
    assert.equal(r.status, 200, r.text);

    const sign = (claims: Record<string, unknown>, tag: string) =>
      request(server.url)
        .post(`/api/v1/repositories/${GUN}/signers/release/sign`)
        .set('Authorization', auth(claims))
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ tag, digest: digest(2), size: 2 }));
    const refused = [
      [{}, /claim team is missing/],
      [{ team: 'ops' }, /claim team = "ops" does not match/],
      [{ team: 'build-x', ref: 'refs/heads/feature' }, /claim ref = "refs\/heads\/feature" does not match/],
    ] as const;
    for (const [claims, reason] of refused) {
      const res = await sign(claims, 'v1');
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.errors[0].code, 'SIGN_DENIED');
      assert.match(res.body.errors[0].detail, reason);
    }
    const ok = await sign({ team: 'build-x', ref: 'refs/tags/release/1.0' }, '1.0');
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(
      (ok.body as { roles: { role: string }[] }).roles.map((x) => x.role),
      ['targets'],
    );
    const targets = JSON.parse((await request(server.url).get(`/v2/${GUN}/_trust/tuf/targets.json`).set('Authorization', admin)).text) as {
      signed: { version: number; targets: Record<string, unknown> };
      signatures: { keyid: string }[];
    };
    assert.equal(targets.signed.version, 2);
    assert.ok(targets.signed.targets['1.0']);
    assert.deepEqual(
      targets.signatures.map((x) => x.keyid),
      [s.keyId],
    );
  });
});
