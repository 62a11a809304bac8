/**
 * Staged updates with token authentication on: every staged-update route needs a token with the
 * access its kind needs (push and pull to stage, sign or cancel; pull to read one repository's;
 * registry catalog access to list across repositories), and the audit trail and `stagedBy` name
 * the token's subject.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { catalogGrant, repoGrant, tokenSigner, type TokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, signatureFor, signFile, targetsDoc, type RootSpec } from '../support/tuf-kit.js';

const SERVICE = 'signet.staged.test';
const ISSUER = 'signet-staged-test-issuer';
const GUN = 'localhost:5000/team/app';

describe('staged updates behind token authentication', { timeout: 60_000 }, () => {
  let work: string;
  let signer: TokenSigner;
  let server: TestServer;
  const bearer = (sub: string, ...grants: ReturnType<typeof repoGrant>[]) => `Bearer ${signer.mint({ sub, access: grants })}`;
  const writer = (sub = 'alice') => bearer(sub, repoGrant(GUN, 'push', 'pull'));
  const reader = () => bearer('reader', repoGrant(GUN, 'pull'));
  let spec: RootSpec;
  let rootKey: ReturnType<typeof certKey>;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-staged-auth-'));
    signer = tokenSigner({ issuer: ISSUER, service: SERVICE });
    const bundle = path.join(work, 'token-ca.pem');
    writeFileSync(bundle, signer.certPem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: 'https://auth.example.com/token',
      SIGNET_AUTH_SERVICE: SERVICE,
      SIGNET_AUTH_ISSUER: ISSUER,
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
    // The repository, published with a writer's token.
    const key = async (role: string) =>
      serverKey(JSON.parse((await request(server.url).get(`/v2/${GUN}/_trust/tuf/${role}.key`).set('Authorization', writer())).text) as never);
    rootKey = certKey({ commonName: GUN });
    const targetsKey = ecdsaKey();
    spec = { root: [rootKey], targets: [targetsKey], snapshot: [await key('snapshot')], timestamp: [await key('timestamp')] };
    const { body, contentType } = multipartBody({ root: signFile(rootDoc(spec), [rootKey]), targets: signFile(targetsDoc({}), [targetsKey]) });
    const res = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', writer()).set('Content-Type', contentType).send(body);
    assert.equal(res.status, 200, res.text);
  });
  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const call = (method: 'get' | 'post' | 'delete', p: string, auth: string | null, body?: object) => {
    let r = request(server.url)[method](p);
    if (auth) r = r.set('Authorization', auth);
    if (body) r = r.set('Content-Type', 'application/json').send(JSON.stringify(body));
    return r;
  };

  test('each route needs its access; stagedBy and the audit trail name the subject', async () => {
    const holder = certKey({ commonName: GUN });
    const holder2 = certKey({ commonName: GUN });
    const signed = rootDoc({ ...spec, version: 2, root: [holder, holder2], rootThreshold: 2 });
    const stageBody = { role: 'root', file: { signed, signatures: [signatureFor(rootKey, canonicalJson(signed))] } };
    const base = `/api/v1/repositories/${GUN}/staged`;

    for (const auth of [null, reader()]) {
      const r = await call('post', base, auth, stageBody);
      assert.equal(r.status, 401, r.text);
      assert.equal(r.body.errors[0].code, 'UNAUTHORIZED');
      assert.match(String(r.headers['www-authenticate']), /scope="repository:localhost:5000\/team\/app:push,pull"/);
    }
    const staged = await call('post', base, writer('alice'), stageBody);
    assert.equal(staged.status, 201, staged.text);
    assert.equal(staged.body.stagedBy, 'alice');
    const id = staged.body.id as string;

    assert.equal((await call('get', base, null)).status, 401);
    assert.equal((await call('get', base, reader())).status, 200);
    assert.equal((await call('get', `${base}/${id}`, null)).status, 401);
    assert.equal((await call('get', `${base}/${id}`, reader())).status, 200);
    assert.equal((await call('get', '/api/v1/staged', writer())).status, 401, 'listing across repositories needs catalog access');
    assert.equal((await call('get', '/api/v1/staged', bearer('admin', catalogGrant('*')))).status, 200);
    // Another repository's token does not reach this one.
    assert.equal((await call('get', `${base}/${id}`, bearer('other', repoGrant('localhost:5000/team/other', '*')))).status, 401);

    const sig = (k: typeof holder) => ({ signatures: [signatureFor(k, canonicalJson(signed))] });
    assert.equal((await call('post', `${base}/${id}/signatures`, reader(), sig(holder))).status, 401);
    assert.equal((await call('delete', `${base}/${id}`, reader())).status, 401);
    assert.equal((await call('post', `${base}/${id}/signatures`, writer('bob'), sig(holder))).status, 200);
    const done = await call('post', `${base}/${id}/signatures`, writer('carol'), sig(holder2));
    assert.equal(done.status, 200, done.text);
    assert.ok(done.body.published);

    const audit = await call('get', `/_signet/audit?gun=${encodeURIComponent(GUN)}`, bearer('admin', catalogGrant('*')));
    const records = (audit.body as { records: { action: string; subject: string }[] }).records.filter((r) => r.action.startsWith('staged-')).reverse();
    assert.deepEqual(
      records.map((r) => [r.action, r.subject]),
      [
        ['staged-create', 'alice'],
        ['staged-sign', 'bob'],
        ['staged-sign', 'carol'],
        ['staged-publish', 'carol'],
      ],
    );
  });
});
