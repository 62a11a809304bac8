/**
 * The inspector's read API (/api/v1/…) and pages (/ui/…) over HTTP: the summaries written with
 * every publish and deletion, search, sort and paging, one repository's tags, keys, delegations
 * and expiries, its history with the audit trail and a diff, what expires, the audit filters;
 * every bad parameter a 400, pages with a strict CSP and escaped names, and SIGNET_UI=off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { catalogGrant, repoGrant, tokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, inDays, multipartBody, rootDoc, serverKey, signFile, targetFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const XSS_GUN = 'localhost:5000/evil/"><svg/onload=alert(1)>';
const XSS_CUSTOM = { note: '<script>alert("custom")</script>' };

async function publish(server: TestServer, gun: string, opts: { targets?: Record<string, unknown>; targetsExpires?: string; delegate?: TestKey } = {}) {
  const enc = gun.split('/').map(encodeURIComponent).join('/');
  const key = async (role: string) => serverKey(JSON.parse((await request(server.url).get(`/v2/${enc}/_trust/tuf/${role}.key`)).text) as never);
  const rootKey = certKey({ commonName: gun });
  const targetsKey = ecdsaKey();
  const spec = { root: [rootKey], targets: [targetsKey], snapshot: [await key('snapshot')], timestamp: [await key('timestamp')] };
  const targets = targetsDoc({
    targets: opts.targets ?? {},
    ...(opts.targetsExpires ? { expires: opts.targetsExpires } : {}),
    ...(opts.delegate ? { delegations: [{ name: 'targets/releases', keys: [opts.delegate] }] } : {}),
  });
  const { body, contentType } = multipartBody({ root: signFile(rootDoc(spec), [rootKey]), targets: signFile(targets, [targetsKey]) });
  const res = await request(server.url).post(`/v2/${enc}/_trust/tuf/`).set('Content-Type', contentType).send(body);
  assert.equal(res.status, 200, res.text);
  return { targetsKey, spec, rootKey };
}

describe('the inspector', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    await publish(server, 'localhost:5000/team/app', { targets: { v1: targetFile('one'), v2: targetFile('two') }, delegate: ecdsaKey() });
    await publish(server, 'localhost:5000/team/soon', { targets: { latest: targetFile('soon') }, targetsExpires: inDays(5) });
    await publish(server, XSS_GUN, { targets: { '<b>tag</b>': { ...targetFile('x'), custom: XSS_CUSTOM } } });
    await publish(server, 'localhost:5000/other/lib', {});
  });
  after(() => server?.close());

  test('lists repositories with their summaries, searches, sorts and pages', async () => {
    const all = await request(server.url).get('/api/v1/repositories');
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.total, 4);
    const app = all.body.repositories.find((r: { gun: string }) => r.gun === 'localhost:5000/team/app');
    assert.equal(app.signedTags, 2);
    assert.deepEqual(app.signers, ['Repo Admin']);
    assert.equal(app.nearestExpiry.state, 'fine');
    const soon = all.body.repositories.find((r: { gun: string }) => r.gun === 'localhost:5000/team/soon');
    assert.deepEqual([soon.nearestExpiry.role, soon.nearestExpiry.state], ['targets', 'warning']);

    const search = await request(server.url).get('/api/v1/repositories?q=TEAM');
    assert.deepEqual(
      search.body.repositories.map((r: { gun: string }) => r.gun),
      ['localhost:5000/team/app', 'localhost:5000/team/soon'],
    );
    const literal = await request(server.url).get('/api/v1/repositories?q=%25');
    assert.equal(literal.body.total, 0, '% is taken literally');
    const byExpiry = await request(server.url).get('/api/v1/repositories?sort=expiry');
    assert.equal(byExpiry.body.repositories[0].gun, 'localhost:5000/team/soon');
    const page1 = await request(server.url).get('/api/v1/repositories?limit=3');
    assert.equal(page1.body.repositories.length, 3);
    const page2 = await request(server.url).get(`/api/v1/repositories?limit=3&cursor=${page1.body.next}`);
    assert.equal(page2.body.repositories.length, 1);
    assert.equal(page2.body.next, null);
  });

  test('one repository: tags with digest, size, signers and custom; keys; delegations; every role expiry', async () => {
    const res = await request(server.url).get('/api/v1/repositories/localhost:5000/team/app');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.body.signedTags.map((t: { tag: string; size: number; signers: string[] }) => [t.tag, t.size, t.signers]),
      [
        ['v1', 3, ['Repo Admin']],
        ['v2', 3, ['Repo Admin']],
      ],
    );
    assert.match(res.body.signedTags[0].digest, /^[0-9a-f]{64}$/);
    assert.equal(res.body.delegations[0].role, 'targets/releases');
    assert.deepEqual(res.body.delegations[0].paths, ['']);
    assert.equal(res.body.rootKeys[0].type, 'ecdsa-x509');
    assert.deepEqual(res.body.serverKeys.map((k: { role: string }) => k.role).sort(), ['snapshot', 'timestamp']);
    assert.deepEqual(
      res.body.roles.map((r: { role: string }) => r.role),
      ['root', 'targets', 'snapshot', 'timestamp'],
    );
    const xss = await request(server.url).get(`/api/v1/repositories/${XSS_GUN.split('/').map(encodeURIComponent).join('/')}`);
    assert.deepEqual(xss.body.signedTags[0].custom, XSS_CUSTOM);
    assert.equal((await request(server.url).get('/api/v1/repositories/localhost:5000/none')).status, 404);
  });

  test('history names who published each version; a diff between two versions of a role', async () => {
    const gun = 'localhost:5000/team/diff';
    const { targetsKey, spec, rootKey } = await publish(server, gun, { targets: { v1: targetFile('one') } });
    const t2 = signFile(targetsDoc({ version: 2, targets: { v1: targetFile('one'), v2: targetFile('two') } }), [targetsKey]);
    const { body, contentType } = multipartBody({ targets: t2 });
    assert.equal((await request(server.url).post(`/v2/${gun}/_trust/tuf/`).set('Content-Type', contentType).send(body)).status, 200);
    void spec;
    void rootKey;
    const history = await request(server.url).get(`/api/v1/repositories/${gun}/history`);
    assert.equal(history.status, 200, history.text);
    const targets2 = history.body.versions.find((v: { role: string; version: number }) => v.role === 'targets' && v.version === 2);
    assert.deepEqual([targets2.publishedBy, targets2.action], ['anonymous', 'update']);
    const diff = await request(server.url).get(`/api/v1/repositories/${gun}/diff?role=targets&from=1&to=2`);
    assert.equal(diff.status, 200, diff.text);
    assert.ok(diff.body.changes.some((c: { op: string; path: string }) => c.op === 'added' && c.path.startsWith('targets.v2.')));
    assert.ok(diff.body.changes.some((c: { op: string; path: string }) => c.op === 'changed' && c.path === 'version'));
    assert.equal((await request(server.url).get(`/api/v1/repositories/${gun}/diff?role=targets&from=1&to=9`)).status, 404);
  });

  test('expiring across repositories, with the command that re-signs', async () => {
    const res = await request(server.url).get('/api/v1/expiring?within=864000');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.body.items.map((i: { gun: string; role: string }) => [i.gun, i.role]),
      [['localhost:5000/team/soon', 'targets']],
    );
    assert.equal(res.body.items[0].command, 'notary witness localhost:5000/team/soon targets -p');
    assert.equal((await request(server.url).get('/api/v1/expiring?within=60')).body.count, 0);
  });

  test('the audit trail filtered by repository, actor, action and time', async () => {
    const res = await request(server.url).get('/api/v1/audit?gun=localhost:5000/team/app&action=update&actor=anonymous');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.count, 1);
    assert.equal((await request(server.url).get('/api/v1/audit?action=delete')).body.count, 0);
    assert.equal((await request(server.url).get('/api/v1/audit?since=2999-01-01T00:00:00Z')).body.count, 0);
  });

  test('bad parameters are 400 INVALID_PARAMETERS, never 5xx', async () => {
    for (const q of [
      '/api/v1/repositories?sort=evil',
      '/api/v1/repositories?order=up',
      '/api/v1/repositories?limit=0',
      '/api/v1/repositories?limit=100000',
      '/api/v1/repositories?cursor=nonsense',
      '/api/v1/repositories?q=a&q=b',
      `/api/v1/repositories?q=${'x'.repeat(300)}`,
      '/api/v1/repositories?unknown=1',
      '/api/v1/expiring?within=-1',
      '/api/v1/audit?since=yesterday',
      '/api/v1/repositories/localhost:5000/team/app/diff?role=targets',
      '/api/v1/repositories/localhost:5000/team/app/diff?role=../x&from=1&to=2',
    ]) {
      const res = await request(server.url).get(q);
      assert.equal(res.status, 400, `${q}: ${res.text}`);
      assert.equal(res.body.errors[0].code, 'INVALID_PARAMETERS', q);
    }
  });

  test('pages: the list, a repository, expiring and audit, with a strict CSP and every name escaped', async () => {
    const home = await request(server.url).get('/');
    assert.equal(home.status, 302);
    assert.equal(home.headers['location'], '/ui/');
    for (const path of [
      '/ui/',
      '/ui/?q=team&sort=expiry&order=asc',
      '/ui/expiring?within=864000',
      '/ui/audit?action=update',
      '/ui/repositories/localhost:5000/team/app',
    ]) {
      const res = await request(server.url).get(path);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.match(res.headers['content-type'] ?? '', /^text\/html/);
      assert.equal(
        res.headers['content-security-policy'],
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      );
      assert.doesNotMatch(res.text, /<script|style=/i, path);
    }
    const list = await request(server.url).get('/ui/');
    assert.ok(!list.text.includes('<svg/onload'), 'the GUN is escaped');
    assert.ok(list.text.includes('&quot;&gt;&lt;svg/onload=alert(1)&gt;'));
    const xss = await request(server.url).get(`/ui/repositories/${XSS_GUN.split('/').map(encodeURIComponent).join('/')}`);
    assert.equal(xss.status, 200, xss.text);
    assert.ok(!xss.text.includes('<script>alert'), 'the custom field is escaped');
    assert.ok(xss.text.includes('&lt;script&gt;alert(\\&quot;custom\\&quot;)&lt;/script&gt;'));
    assert.ok(xss.text.includes('&lt;b&gt;tag&lt;/b&gt;'));
    const css = await request(server.url).get('/ui/static/signet.css');
    assert.equal(css.status, 200);
    assert.match(css.headers['content-type'] ?? '', /^text\/css/);
    assert.equal((await request(server.url).get('/ui/?sort=evil')).status, 400);
    assert.equal((await request(server.url).get('/ui/repositories/localhost:5000/none')).status, 404);
    assert.equal((await request(server.url).post('/ui/')).status, 404, 'pages are GET only');
  });

  test('deleting a repository removes it from the list', async () => {
    const gun = 'localhost:5000/team/gone';
    await publish(server, gun, {});
    assert.equal((await request(server.url).get(`/api/v1/repositories?q=gone`)).body.total, 1);
    assert.equal((await request(server.url).delete(`/v2/${gun}/_trust/tuf/`)).status, 200);
    assert.equal((await request(server.url).get(`/api/v1/repositories?q=gone`)).body.total, 0);
  });

  test('SIGNET_UI=off: no pages, no redirect; the API stays', async () => {
    const off = await startTestServer({ SIGNET_UI: 'off' });
    try {
      assert.equal((await request(off.url).get('/')).status, 404);
      assert.equal((await request(off.url).get('/ui/')).status, 404);
      assert.equal((await request(off.url).get('/api/v1/repositories')).status, 200);
    } finally {
      await off.close();
    }
  });
});

describe('the inspector API behind token authentication', { timeout: 60_000 }, () => {
  const GUN = 'localhost:5000/team/app';
  let work: string;
  let server: TestServer;
  const signer = tokenSigner({ issuer: 'inspector-issuer', service: 'inspector-service' });
  const bearer = (...grants: ReturnType<typeof repoGrant>[]) => `Bearer ${signer.mint({ sub: 'someone', access: grants })}`;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-inspector-auth-'));
    const bundle = path.join(work, 'tokens.pem');
    writeFileSync(bundle, signer.certPem);
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      // Nothing listens there: a login cannot reach the token service.
      SIGNET_AUTH_REALM: 'http://127.0.0.1:9/token',
      SIGNET_AUTH_SERVICE: 'inspector-service',
      SIGNET_AUTH_ISSUER: 'inspector-issuer',
      SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
    });
  });
  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('one repository needs pull on it; the lists need the catalog; the pages send anonymous visitors to the login', async () => {
    const get = (p: string, auth?: string) => (auth ? request(server.url).get(p).set('Authorization', auth) : request(server.url).get(p));
    assert.equal((await get(`/api/v1/repositories/${GUN}`)).status, 401);
    assert.equal((await get(`/api/v1/repositories/${GUN}`, bearer(repoGrant(GUN, 'pull')))).status, 404, 'allowed; there is no such repository');
    assert.equal((await get(`/api/v1/repositories/${GUN}/history`, bearer(repoGrant('localhost:5000/other', 'pull')))).status, 401);
    for (const p of ['/api/v1/repositories', '/api/v1/expiring', '/api/v1/audit']) {
      const refused = await get(p, bearer(repoGrant(GUN, 'pull')));
      assert.equal(refused.status, 401, p);
      assert.match(refused.headers['www-authenticate'] ?? '', /scope="registry:catalog:\*"/);
      assert.equal((await get(p, bearer(catalogGrant('*')))).status, 200, p);
    }
    const page = await get('/ui/');
    assert.equal(page.status, 303);
    assert.equal(page.headers['location'], '/ui/login');
    const login = await get('/ui/login');
    assert.equal(login.status, 200);
    assert.match(login.text, /<form class="login" method="post" action="\/ui\/login">/);
    assert.equal((await get('/ui/repositories/localhost:5000/team/app')).status, 303);
    const bad = await request(server.url).post('/ui/login').type('form').send({ username: 'u', password: 'p' });
    assert.equal(bad.status, 502, 'the realm cannot be reached');
    assert.ok(!bad.text.includes('"p"'), 'the password is not put back in the page');
  });
});
