/**
 * Server-held signers over the real HTTP API with token authentication on: an admin creates a
 * signer, the owner delegates to its certificate (targets/NAME and targets/releases), a
 * pipeline's registry token signs tags with it.
 * Every refusal (bad input, a disabled signer, a tag or an identity the rules do not allow, a
 * token without push, a rate limit) is a 4xx in the JSON error format, publishes nothing and is
 * in the audit trail (test/e2e/server-signers.test.ts has the notary CLI read the result); rotation keeps the old key signing for its grace period.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { startTestServer, type TestServer } from '../support/server.js';
import { catalogGrant, repoGrant, tokenSigner, type TokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, signFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const SERVICE = 'signet.signers.test';
const ISSUER = 'signet-signers-test-issuer';
const GUN = 'localhost:5000/team/app';

const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

describe('server-held signers', { timeout: 120_000 }, () => {
  let work: string;
  let tokens: TokenSigner;
  let server: TestServer;
  const bearer = (sub: string, ...grants: ReturnType<typeof repoGrant>[]) => `Bearer ${tokens.mint({ sub, access: grants })}`;
  const admin = () => bearer('admin', repoGrant(GUN, '*'), catalogGrant('*'));
  const pusher = (sub = 'ci-pipeline', extra: Record<string, unknown> = {}) =>
    `Bearer ${tokens.mint({ sub, access: [repoGrant(GUN, 'push', 'pull')], ...extra })}`;
  const reader = () => bearer('reader', repoGrant(GUN, 'pull'));
  let targetsKey: TestKey;
  let rootKey: TestKey;
  let spec: Parameters<typeof rootDoc>[0];

  const api = (method: 'get' | 'post' | 'put' | 'delete', p: string, auth: string | null, body?: unknown) => {
    let r = request(server.url)[method](`/api/v1/repositories/${GUN}/signers${p}`);
    if (auth) r = r.set('Authorization', auth);
    if (body !== undefined) r = r.set('Content-Type', 'application/json').send(typeof body === 'string' ? body : JSON.stringify(body));
    return r;
  };
  const current = async (role: string) => {
    const r = await request(server.url).get(`/v2/${GUN}/_trust/tuf/${role}.json`).set('Authorization', reader());
    return r.status === 200
      ? (JSON.parse(r.text) as { signed: { version: number; targets?: Record<string, { hashes: { sha256: string }; length: number }> } })
      : null;
  };
  const audit = async (signer: string) => {
    const r = await request(server.url).get(`/_signet/audit?signer=${signer}&limit=1000`).set('Authorization', admin());
    assert.equal(r.status, 200, r.text);
    return (r.body as { records: { action: string; subject: string; detail: Record<string, unknown> }[] }).records;
  };

  /** Publish `targets` delegating to `signers` (their certificates, as signet trust signer add would). */
  const delegate = async (version: number, signers: { name: string; publicKey: string }[]) => {
    const keys = signers.map((s) => ({ keytype: 'ecdsa-x509', publicB64: s.publicKey, keyId: '', privateKey: null }));
    const withIds = keys.map((k) => ({
      ...k,
      keyId: createHash('sha256')
        .update(JSON.stringify({ keytype: k.keytype, keyval: { private: null, public: k.publicB64 } }))
        .digest('hex'),
    }));
    const doc = targetsDoc({
      version,
      delegations: [...signers.map((s, i) => ({ name: `targets/${s.name}`, keys: [withIds[i]!] })), { name: 'targets/releases', keys: withIds }],
    });
    const { body, contentType } = multipartBody({ targets: signFile(doc, [targetsKey]) });
    const r = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin()).set('Content-Type', contentType).send(body);
    assert.equal(r.status, 200, r.text);
  };

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-signers-'));
    tokens = tokenSigner({ issuer: ISSUER, service: SERVICE });
    const bundle = path.join(work, 'token-ca.pem');
    writeFileSync(bundle, tokens.certPem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: 'https://auth.example.com/token',
      SIGNET_AUTH_SERVICE: SERVICE,
      SIGNET_AUTH_ISSUER: ISSUER,
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
      SIGNET_SIGN_RATE_LIMIT: '40',
    });
    // The repository, with a server-held snapshot key as docker creates it.
    const key = async (role: string) =>
      serverKey(JSON.parse((await request(server.url).get(`/v2/${GUN}/_trust/tuf/${role}.key`).set('Authorization', admin())).text) as never);
    rootKey = certKey({ commonName: GUN });
    targetsKey = ecdsaKey();
    spec = { root: [rootKey], targets: [targetsKey], snapshot: [await key('snapshot')], timestamp: [await key('timestamp')] };
    const { body, contentType } = multipartBody({ root: signFile(rootDoc(spec), [rootKey]), targets: signFile(targetsDoc({}), [targetsKey]) });
    const res = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin()).set('Content-Type', contentType).send(body);
    assert.equal(res.status, 200, res.text);
  });
  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('create, list, get, disable, enable; managing needs the repository admin scope, reading pull', async () => {
    for (const auth of [null, pusher()]) {
      const r = await api('post', '', auth, { name: 'ci' });
      assert.equal(r.status, 401, r.text);
      assert.match(String(r.headers['www-authenticate']), /scope="repository:localhost:5000\/team\/app:\*"/);
    }
    const created = await api('post', '', admin(), { name: 'ci', rules: { identities: [{ subject: 'ci-*' }], tags: ['v*', 'latest'] } });
    assert.equal(created.status, 201, created.text);
    const s = created.body as { name: string; state: string; keyId: string; keytype: string; publicKey: string; certificate: string };
    assert.equal(s.name, 'ci');
    assert.equal(s.state, 'active');
    assert.equal(s.keytype, 'ecdsa-x509');
    assert.match(s.certificate, /^-----BEGIN CERTIFICATE-----\n/);
    assert.equal(Buffer.from(s.publicKey, 'base64').toString('latin1'), s.certificate);
    assert.doesNotMatch(created.text, /PRIVATE/);

    const again = await api('post', '', admin(), { name: 'ci' });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.errors[0].code, 'SIGNER_EXISTS');
    for (const bad of [{ name: 'Bad Name' }, { name: 'releases' }, { name: 'x', rules: { tags: 'v*' } }, { name: 'x', extra: 1 }]) {
      const r = await api('post', '', admin(), bad);
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
      assert.equal(r.body.errors[0].code, 'INVALID_PARAMETERS');
    }
    const junk = await api('post', '', admin(), '{nope');
    assert.equal(junk.status, 400);
    assert.equal(junk.body.errors[0].code, 'MALFORMED_JSON');

    const list = await api('get', '', reader());
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
      (list.body as { signers: { name: string; keyId: string }[] }).signers.map((x) => [x.name, x.keyId]),
      [['ci', s.keyId]],
    );
    const one = await api('get', '/ci', reader());
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body.delegatedIn, []);
    const missing = await api('get', '/nobody', reader());
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errors[0].code, 'SIGNER_NOT_FOUND');

    const disabled = await api('post', '/ci/disable', admin());
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal(disabled.body.state, 'disabled');
    const enabled = await api('post', '/ci/enable', admin());
    assert.equal(enabled.body.state, 'active');
    const actions = (await audit('ci')).map((r) => r.action);
    assert.deepEqual(actions.slice(0, 3), ['signer-enable', 'signer-disable', 'signer-create']);
  });

  test('a sign call publishes the tag into targets/ci and targets/releases, signed by the server-held key; audited', async () => {
    const s = (await api('get', '/ci', reader())).body as { keyId: string; publicKey: string };
    // Not delegated yet: refused, nothing published.
    const early = await api('post', '/ci/sign', pusher(), { tag: 'v1', digest: digestOf('one'), size: 10 });
    assert.equal(early.status, 409, early.text);
    assert.equal(early.body.errors[0].code, 'SIGNER_NOT_DELEGATED');

    await delegate(2, [{ name: 'ci', publicKey: s.publicKey }]);
    const delegated = await api('get', '/ci', reader());
    assert.deepEqual(
      (delegated.body.delegatedIn as { role: string }[]).map((d) => d.role),
      ['targets/ci', 'targets/releases'],
    );

    const before = (await current('timestamp'))!.signed.version;
    const r = await api('post', '/ci/sign', pusher(), { tag: 'v1', digest: digestOf('one'), size: 10 });
    assert.equal(r.status, 200, r.text);
    const answer = r.body as { roles: { role: string; keyIds: string[] }[]; published: { role: string; version: number }[] };
    assert.deepEqual(
      answer.roles.map((x) => [x.role, x.keyIds]),
      [
        ['targets/ci', [s.keyId]],
        ['targets/releases', [s.keyId]],
      ],
    );
    assert.deepEqual(
      answer.published.map((p) => p.role),
      ['targets/ci', 'targets/releases', 'snapshot', 'timestamp'],
    );
    assert.equal(answer.published.find((p) => p.role === 'timestamp')!.version, before + 1);
    const releases = (await current('targets/releases'))!;
    assert.equal(releases.signed.targets!['v1']!.length, 10);
    assert.equal(Buffer.from(releases.signed.targets!['v1']!.hashes.sha256, 'base64').toString('hex'), digestOf('one').slice(7));

    // The next call builds on the version just stored, keeping the earlier tags.
    const r2 = await api('post', '/ci/sign', pusher(), { tag: 'latest', digest: digestOf('two'), size: 20 });
    assert.equal(r2.status, 200, r2.text);
    const after = (await current('targets/ci'))!;
    assert.equal(after.signed.version, 2);
    assert.deepEqual(Object.keys(after.signed.targets!).sort(), ['latest', 'v1']);

    const records = (await audit('ci')).filter((x) => x.action === 'signer-sign' && x.detail['result'] === 'signed');
    assert.equal(records.length, 2);
    assert.equal(records[0]!.subject, 'ci-pipeline');
    assert.equal((records[0]!.detail['identity'] as { kind: string }).kind, 'registry-token');
    assert.equal((records[0]!.detail['identity'] as { claims: { sub: string } }).claims.sub, 'ci-pipeline');
    assert.equal(records[0]!.detail['digest'], digestOf('two'));
  });

  test('refusals: bad input, a tag or identity the rules do not allow, a disabled signer, no push; each a 4xx, nothing published, audited', async () => {
    const before = (await current('timestamp'))!.signed.version;
    const cases: { body: unknown; auth: string | null; status: number; code: string; path?: string }[] = [
      { body: { tag: 'v2', digest: 'sha256:xyz', size: 1 }, auth: pusher(), status: 400, code: 'INVALID_PARAMETERS' },
      { body: { tag: '-bad', digest: digestOf('x'), size: 1 }, auth: pusher(), status: 400, code: 'INVALID_PARAMETERS' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 0 }, auth: pusher(), status: 400, code: 'INVALID_PARAMETERS' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 1, extra: true }, auth: pusher(), status: 400, code: 'INVALID_PARAMETERS' },
      { body: '{"tag":', auth: pusher(), status: 400, code: 'MALFORMED_JSON' },
      { body: { tag: 'nightly', digest: digestOf('x'), size: 1 }, auth: pusher(), status: 403, code: 'SIGN_DENIED' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 1 }, auth: pusher('someone-else'), status: 403, code: 'SIGN_DENIED' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 1 }, auth: reader(), status: 401, code: 'UNAUTHORIZED' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 1 }, auth: null, status: 401, code: 'UNAUTHORIZED' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 1 }, auth: pusher(), status: 404, code: 'SIGNER_NOT_FOUND', path: '/nobody/sign' },
      { body: { tag: 'v2', digest: digestOf('x'), size: 1, scan: { report: 1 } }, auth: pusher(), status: 400, code: 'SIGN_REFUSED' },
    ];
    for (const c of cases) {
      const r = await api('post', c.path ?? '/ci/sign', c.auth, c.body);
      assert.equal(r.status, c.status, `${JSON.stringify(c.body)}: ${r.text}`);
      assert.equal(r.body.errors[0].code, c.code, r.text);
      assert.match(String(r.headers['content-type']), /^application\/json/);
    }
    assert.equal((await api('post', '/ci/disable', admin())).status, 200);
    const off = await api('post', '/ci/sign', pusher(), { tag: 'v2', digest: digestOf('x'), size: 1 });
    assert.equal(off.status, 409, off.text);
    assert.equal(off.body.errors[0].code, 'SIGNER_DISABLED');
    assert.equal((await api('post', '/ci/enable', admin())).status, 200);

    assert.equal((await current('timestamp'))!.signed.version, before, 'nothing was published');
    const refused = (await audit('ci')).filter((x) => x.action === 'signer-sign' && x.detail['result'] === 'refused');
    const codes = refused.map((x) => x.detail['code']);
    for (const code of ['INVALID_PARAMETERS', 'MALFORMED_JSON', 'SIGN_DENIED', 'UNAUTHORIZED', 'SIGN_REFUSED', 'SIGNER_DISABLED', 'SIGNER_NOT_DELEGATED']) {
      assert.ok(codes.includes(code), `${code} is audited: ${JSON.stringify(codes)}`);
    }
    const denied = refused.find((x) => x.detail['code'] === 'SIGN_DENIED' && x.subject === 'someone-else');
    assert.ok(denied, 'the refused identity is named');
    assert.equal((denied.detail['identity'] as { subject: string }).subject, 'someone-else');
    assert.equal(denied.detail['digest'], digestOf('x'));
    assert.ok((await audit('nobody')).some((x) => x.detail['code'] === 'SIGNER_NOT_FOUND'));
    const metrics = await request(server.url).get('/metrics').set('Authorization', admin());
    assert.match(metrics.text, /^signet_signer_sign_total\{result="signed",code=""\} 2$/m);
    assert.match(metrics.text, /^signet_signer_sign_total\{result="refused",code="SIGN_DENIED"\} 2$/m);
  });

  test('rotation: a new key; the old one signs during its grace period, and only the new one once the owner moved the delegation', async () => {
    const old = (await api('get', '/ci', reader())).body as { keyId: string };
    const rotated = await api('post', '/ci/rotate', admin(), { graceSeconds: 3600 });
    assert.equal(rotated.status, 200, rotated.text);
    const next = rotated.body as { keyId: string; publicKey: string; keys: { keyId: string; state: string }[] };
    assert.notEqual(next.keyId, old.keyId);
    assert.deepEqual(next.keys.map((k) => [k.keyId, k.state]).sort(), [
      ...[
        [next.keyId, 'active'],
        [old.keyId, 'retiring'],
      ].sort(),
    ]);
    // The delegation still lists the old key: it signs.
    const r = await api('post', '/ci/sign', pusher(), { tag: 'v3', digest: digestOf('three'), size: 3 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.roles[0].keyIds, [old.keyId]);
    // The owner moves the delegation to the new key.
    await delegate(3, [{ name: 'ci', publicKey: next.publicKey }]);
    const r2 = await api('post', '/ci/sign', pusher(), { tag: 'v4', digest: digestOf('four'), size: 4 });
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual(r2.body.roles[0].keyIds, [next.keyId]);
    // No grace: the old key is gone at once.
    const now = await api('post', '/ci/rotate', admin(), { graceSeconds: 0 });
    assert.deepEqual(
      (now.body as { keys: { state: string }[] }).keys.map((k) => k.state),
      ['active'],
    );
    const r3 = await api('post', '/ci/sign', pusher(), { tag: 'v5', digest: digestOf('five'), size: 5 });
    assert.equal(r3.status, 409, r3.text);
    assert.equal(r3.body.errors[0].code, 'SIGNER_NOT_DELEGATED');
  });

  test('the rate limit per identity answers 429 with Retry-After, audited', async () => {
    await api('post', '', admin(), { name: 'flood' });
    let limited: request.Response | null = null;
    for (let i = 0; i < 45 && !limited; i++) {
      const r = await api('post', '/flood/sign', pusher('flooder'), { tag: `t${i}`, digest: digestOf(`f${i}`), size: 1 });
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 409, r.text); // not delegated: refused, but counted
    }
    assert.ok(limited, 'the limit of 40 a minute was reached');
    assert.equal(limited.body.errors[0].code, 'RATE_LIMITED');
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
    // Another identity is not affected.
    const other = await api('post', '/flood/sign', pusher('other'), { tag: 't', digest: digestOf('f'), size: 1 });
    assert.equal(other.status, 409);
    assert.ok((await audit('flood')).some((x) => x.detail['code'] === 'RATE_LIMITED'));
  });

  test('delete destroys the signer and its keys', async () => {
    const r = await api('delete', '/flood', admin());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.deleted, true);
    assert.equal((await api('get', '/flood', reader())).status, 404);
    assert.equal((await api('delete', '/flood', admin())).status, 404);
  });
});
