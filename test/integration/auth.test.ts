/**
 * Registry token auth over HTTP (notary-protocol.md §5.1): Signet with SIGNET_AUTH=token in front
 * of the development token service. Every route but health answers 401 with its exact challenge
 * and notary's UNAUTHORIZED envelope when the token is missing, invalid or short of scope, and
 * a refused request stores nothing. Real tokens fetched the way clients fetch them (from the
 * realm in the challenge, with Basic credentials) create, read and delete a repository.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { ConfigError } from '../../src/config.js';
import { createTestDatabase } from '../support/database.js';
import { startTestServer, testConfig, type TestServer } from '../support/server.js';
import { repoGrant, tokenSigner, type TokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, signFile, snapshotDoc, targetsDoc } from '../support/tuf-kit.js';

const SERVICE = 'signet.test';
const ISSUER = 'signet-test-token-issuer';
// Full GUNs including the registry host and port, as docker builds them.
const PUBLIC = 'localhost:5000/public/app';
const FRESH = 'localhost:5000/public/fresh';
const PRIVATE = 'localhost:5000/private/app';
const ADMIN = { name: 'admin', password: 'admin-secret' };
const READER = { name: 'reader', password: 'reader-secret' };

let work: string;
let tokens: RunningTokenService;
let own: TokenSigner; // a second trusted signer (its certificate is in the bundle), for tokens the service never issues
let stranger: TokenSigner; // a signer nobody trusts
let server: TestServer;

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'signet-auth-'));
  tokens = await startDevTokenService({
    issuer: ISSUER,
    service: SERVICE,
    users: [
      { ...ADMIN, repositories: [''], actions: ['*'] },
      { ...READER, repositories: ['localhost:5000/public/'], actions: ['pull'] },
    ],
  });
  own = tokenSigner({ issuer: ISSUER, service: SERVICE, commonName: 'test-minted tokens' });
  stranger = tokenSigner({ issuer: ISSUER, service: SERVICE, commonName: 'stranger' });
  const bundle = path.join(work, 'token-ca.pem');
  writeFileSync(bundle, tokens.certificatePem + own.certPem);
  server = await startTestServer({
    SIGNET_AUTH: 'token',
    SIGNET_AUTH_REALM: tokens.realm,
    SIGNET_AUTH_SERVICE: SERVICE,
    SIGNET_AUTH_ISSUER: ISSUER,
    SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
  });
});

after(async () => {
  await server?.close();
  await tokens?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---- helpers ----

type Method = 'get' | 'post' | 'delete' | 'put' | 'head';
type User = { name: string; password: string } | null;

interface Answer {
  status: number;
  challenge: string | undefined;
  contentType: string | undefined;
  text: string;
}

async function call(method: Method, urlPath: string, token?: string, body?: { data: Buffer; contentType: string }): Promise<Answer> {
  let req = request(server.url)[method](urlPath);
  if (token !== undefined) req = req.set('Authorization', `Bearer ${token}`);
  if (body) req = req.set('Content-Type', body.contentType).send(body.data);
  const res = await req.buffer(true).parse((r, done) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (c: string) => (text += c));
    r.on('end', () => done(null, text));
  });
  return { status: res.status, challenge: res.headers['www-authenticate'], contentType: res.headers['content-type'], text: String(res.body ?? '') };
}

/** A token from the token service, as clients ask for it: GET <realm>?service=…&scope=… with Basic credentials. */
async function fetchToken(user: User, scope: string, realm = tokens.realm, service = SERVICE): Promise<string> {
  const url = new URL(realm);
  url.searchParams.set('service', service);
  for (const s of scope.split(' ')) url.searchParams.append('scope', s);
  const headers: Record<string, string> = user ? { Authorization: `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}` } : {};
  const res = await fetch(url, { headers });
  assert.equal(res.status, 200, `token for ${scope}: ${await res.clone().text()}`);
  const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
  assert.equal(body.token, body.access_token);
  return body.token;
}

/** What a client does with a 401: read realm, service and scope from the challenge and fetch a token there. */
async function tokenFromChallenge(challenge: string | undefined, user: User): Promise<string> {
  assert.ok(challenge, 'a 401 carries a challenge');
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!.replace(/\\(.)/g, '$1')]));
  assert.ok(challenge.startsWith('Bearer '));
  return fetchToken(user, params['scope']!, params['realm'], params['service']);
}

/** Call; on 401 fetch a token from the challenge and call again, the way the notary client and docker do. */
async function callAs(user: User, method: Method, urlPath: string, body?: { data: Buffer; contentType: string }): Promise<Answer> {
  const first = await call(method, urlPath, undefined, body);
  if (first.status !== 401) return first;
  return call(method, urlPath, await tokenFromChallenge(first.challenge, user), body);
}

function challengeFor(scope: string, error?: 'invalid_token' | 'insufficient_scope'): string {
  return `Bearer realm="${tokens.realm}",service="${SERVICE}",scope="${scope}"${error ? `,error="${error}"` : ''}`;
}

function envelope(detail: { Type: string; Name: string; Action: string }[]): string {
  return (
    JSON.stringify({
      errors: [
        { code: 'UNAUTHORIZED', message: 'authentication required', detail: detail.map((d) => ({ Type: d.Type, Class: '', Name: d.Name, Action: d.Action })) },
      ],
    }) + '\n'
  );
}

/** The `detail` entries of a scope string such as `repository:<gun>:push,pull`. */
function detailOf(scope: string) {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  return scope
    .slice(last + 1)
    .split(',')
    .map((Action) => ({ Type: scope.slice(0, first), Name: scope.slice(first + 1, last), Action }));
}

function assertUnauthorized(res: Answer, scope: string, error: 'invalid_token' | 'insufficient_scope' | undefined, what: string): void {
  assert.equal(res.status, 401, `${what}: ${res.text}`);
  assert.equal(res.challenge, challengeFor(scope, error), what);
  assert.equal(res.contentType, 'application/json; charset=utf-8', what);
  assert.equal(res.text, envelope(detailOf(scope)), what);
}

async function counts(): Promise<Record<string, number>> {
  const db = server.context.database.db;
  const n = async (table: 'tuf_files' | 'changefeed' | 'server_keys') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { tuf_files: await n('tuf_files'), changefeed: await n('changefeed'), server_keys: await n('server_keys') };
}

/** The body that creates `gun` (root, targets, client snapshot) for the server timestamp key given. */
function createBody(gun: string, timestampKeyJson: string): { data: Buffer; contentType: string } {
  const timestampKey = serverKey(JSON.parse(timestampKeyJson) as { keytype: string; keyval: { public: string } });
  const rootKey = certKey({ commonName: gun });
  const targetsKey = ecdsaKey();
  const snapshotKey = ecdsaKey();
  const root = signFile(rootDoc({ root: [rootKey], targets: [targetsKey], snapshot: [snapshotKey], timestamp: [timestampKey] }), [rootKey]);
  const targets = signFile(targetsDoc({ targets: {} }), [targetsKey]);
  const snapshot = signFile(snapshotDoc({ files: { root, targets } }), [snapshotKey]);
  const { body, contentType } = multipartBody({ root, targets, snapshot });
  return { data: body, contentType };
}

const tuf = (gun: string, rest = '') => `/v2/${gun}/_trust/tuf/${rest}`;
const HEX64 = 'ab'.repeat(32);

// ---- tests ----

describe('without a token: every route but health answers 401 with its challenge', () => {
  const G = PRIVATE;
  const routes: [Method, string, string][] = [
    ['get', '/v2/', 'registry:catalog:*'],
    ['get', tuf(G, 'root.json'), `repository:${G}:pull`],
    ['get', tuf(G, 'timestamp.json'), `repository:${G}:pull`],
    ['get', tuf(G, 'targets/releases.json'), `repository:${G}:pull`],
    ['get', tuf(G, `snapshot.${HEX64}.json`), `repository:${G}:pull`],
    ['get', tuf(G, '3.targets.json'), `repository:${G}:pull`],
    ['post', tuf(G), `repository:${G}:push,pull`],
    ['delete', tuf(G), `repository:${G}:*`],
    ['get', tuf(G, 'timestamp.key'), `repository:${G}:push,pull`],
    ['get', tuf(G, 'snapshot.key'), `repository:${G}:push,pull`],
    ['post', tuf(G, 'timestamp.key'), `repository:${G}:*`],
    ['post', tuf(G, 'snapshot.key'), `repository:${G}:*`],
    ['get', `/v2/${G}/_trust/changefeed`, `repository:${G}:pull`],
    ['get', '/v2/_trust/changefeed', 'registry:catalog:*'],
    // Signet's own routes: operations need the catalog scope, a repository's history needs pull.
    ['get', '/metrics', 'registry:catalog:*'],
    ['get', '/_signet/audit', 'registry:catalog:*'],
    ['get', '/_signet/expiring', 'registry:catalog:*'],
    ['get', `/_signet/history/${G}`, `repository:${G}:pull`],
    // The catch-all (notary's NotFoundHandler) needs the catalog scope as well.
    ['get', tuf(G, 'unknown.txt'), 'registry:catalog:*'],
    ['put', tuf(G), 'registry:catalog:*'],
    ['get', '/v2', 'registry:catalog:*'],
    ['get', '/elsewhere', 'registry:catalog:*'],
  ];

  for (const [method, urlPath, scope] of routes) {
    test(`${method.toUpperCase()} ${urlPath} → 401, scope="${scope}"`, async () => {
      const initial = await counts();
      assertUnauthorized(await call(method, urlPath), scope, undefined, `${method} ${urlPath}`);
      assert.deepEqual(await counts(), initial, 'nothing stored (not even a server key)');
    });
  }

  test('a non-Bearer Authorization header is the same as none', async () => {
    const res = await request(server.url)
      .get(tuf(G, 'root.json'))
      .set('Authorization', `Basic ${Buffer.from('admin:admin-secret').toString('base64')}`);
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], challengeFor(`repository:${G}:pull`));
  });

  test('health and readiness stay open: 200 without a token', async () => {
    for (const urlPath of ['/_notary_server/health', '/_signet/ready']) {
      const res = await call('get', urlPath);
      assert.equal(res.status, 200, `${urlPath}: ${res.text}`);
      assert.equal(res.challenge, undefined, urlPath);
    }
    assert.equal((await call('get', '/_notary_server/health')).text, '{}');
  });

  test('an anonymous token (the service grants nothing) is refused with insufficient_scope', async () => {
    const token = await fetchToken(null, `repository:${G}:pull`);
    assertUnauthorized(await call('get', tuf(G, 'root.json'), token), `repository:${G}:pull`, 'insufficient_scope', 'anonymous');
    const ping = await fetchToken(null, 'registry:catalog:*');
    assertUnauthorized(await call('get', '/v2/', ping), 'registry:catalog:*', 'insufficient_scope', 'anonymous ping');
  });
});

describe('refused tokens store nothing', () => {
  let body: { data: Buffer; contentType: string };
  const NEW = FRESH;
  const UPDATE = `repository:${NEW}:push,pull`;

  before(async () => {
    // A repository to attempt deletions and rotations on, and a valid body that would create NEW.
    const admin = await fetchToken(ADMIN, `repository:${PUBLIC}:push,pull`);
    const key = await call('get', tuf(PUBLIC, 'timestamp.key'), admin);
    assert.equal(key.status, 200, key.text);
    const created = await call('post', tuf(PUBLIC), admin, createBody(PUBLIC, key.text));
    assert.equal(created.status, 200, created.text);
    const newKey = await call('get', tuf(NEW, 'timestamp.key'), await fetchToken(ADMIN, UPDATE));
    assert.equal(newKey.status, 200, newKey.text);
    body = createBody(NEW, newKey.text);
  });

  /** Send the request with `token`; expect 401 with `error` and no change to the database. */
  async function refusedWrite(
    token: string,
    error: 'invalid_token' | 'insufficient_scope',
    what: string,
    method: Method = 'post',
    urlPath = tuf(NEW),
    scope = UPDATE,
  ) {
    const beforeCounts = await counts();
    const res = await call(method, urlPath, token, method === 'post' && urlPath === tuf(NEW) ? body : undefined);
    assertUnauthorized(res, scope, error, what);
    assert.deepEqual(await counts(), beforeCounts, `${what}: nothing stored`);
  }

  test('control: a token minted by the second trusted signer is accepted', async () => {
    const res = await call('get', tuf(PUBLIC, 'root.json'), own.mint({ access: [repoGrant(PUBLIC, 'pull')] }));
    assert.equal(res.status, 200, res.text);
  });

  test('expired token (beyond the 60 s leeway)', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refusedWrite(own.mint({ access: [repoGrant(NEW, '*')], exp: now - 120, nbf: now - 600 }), 'invalid_token', 'expired');
  });

  test('token not valid yet', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refusedWrite(own.mint({ access: [repoGrant(NEW, '*')], nbf: now + 600 }), 'invalid_token', 'nbf in the future');
  });

  test('wrong issuer', async () => {
    await refusedWrite(own.mint({ access: [repoGrant(NEW, '*')], iss: 'another-issuer' }), 'invalid_token', 'issuer');
  });

  test('wrong audience (string and array)', async () => {
    await refusedWrite(own.mint({ access: [repoGrant(NEW, '*')], aud: 'another-service' }), 'invalid_token', 'audience');
    await refusedWrite(own.mint({ access: [repoGrant(NEW, '*')], aud: ['another-service', 'a-third'] }), 'invalid_token', 'audience array');
  });

  test('untrusted signing key (its certificate is not in the bundle)', async () => {
    await refusedWrite(stranger.mint({ access: [repoGrant(NEW, '*')] }), 'invalid_token', 'untrusted x5c');
    // Naming a trusted certificate does not help a stranger's signature.
    await refusedWrite(stranger.mint({ access: [repoGrant(NEW, '*')] }, { x5c: own.x5c }), 'invalid_token', 'forged x5c');
  });

  test('garbage in place of a token', async () => {
    await refusedWrite('not-a-jwt', 'invalid_token', 'garbage');
  });

  test('a real token for another repository', async () => {
    await refusedWrite(await fetchToken(ADMIN, `repository:${PRIVATE}:*`), 'insufficient_scope', 'other repository');
  });

  test('a pull-only token on POST update', async () => {
    // The reader asks for push and pull; the token service grants pull only.
    await refusedWrite(await fetchToken(READER, UPDATE), 'insufficient_scope', 'pull-only');
  });

  test('a pull-only token does not get a server key either', async () => {
    const res = await call(
      'get',
      tuf('localhost:5000/public/keyless', 'timestamp.key'),
      await fetchToken(READER, 'repository:localhost:5000/public/keyless:push,pull'),
    );
    assertUnauthorized(res, 'repository:localhost:5000/public/keyless:push,pull', 'insufficient_scope', 'GET key with pull');
    const rows = await server.context.database.db.selectFrom('server_keys').select('key_id').where('gun', '=', 'localhost:5000/public/keyless').execute();
    assert.deepEqual(rows, []);
  });

  test('a push+pull token on DELETE (needs *) leaves the repository in place', async () => {
    const token = await fetchToken(ADMIN, `repository:${PUBLIC}:push,pull`);
    await refusedWrite(token, 'insufficient_scope', 'DELETE with push,pull', 'delete', tuf(PUBLIC), `repository:${PUBLIC}:*`);
    const still = await call('get', tuf(PUBLIC, 'root.json'), token);
    assert.equal(still.status, 200, 'the repository was not deleted');
  });

  test('a push+pull token on key rotation (needs *)', async () => {
    const token = await fetchToken(ADMIN, `repository:${PUBLIC}:push,pull`);
    await refusedWrite(token, 'insufficient_scope', 'POST timestamp.key', 'post', tuf(PUBLIC, 'timestamp.key'), `repository:${PUBLIC}:*`);
  });

  test('and the same body goes through with a proper token (so the refusals were about auth)', async () => {
    const initial = await counts();
    const res = await call('post', tuf(NEW), await fetchToken(ADMIN, UPDATE), body);
    assert.equal(res.status, 200, res.text);
    const afterCounts = await counts();
    assert.equal(afterCounts['tuf_files'], initial['tuf_files']! + 4, 'root, targets, snapshot and a timestamp stored');
  });
});

describe('a repository’s life with real tokens', () => {
  const G = 'localhost:5000/public/life';

  test('ping: 401, then 200 with the token fetched from the challenge', async () => {
    const first = await call('get', '/v2/');
    assert.equal(first.status, 401);
    const again = await call('get', '/v2/', await tokenFromChallenge(first.challenge, ADMIN));
    assert.equal(again.status, 200);
    assert.equal(again.text, '{}');
  });

  test('an authorized read of a repository that does not exist is 404, not 401', async () => {
    for (const user of [ADMIN, READER]) {
      const res = await callAs(user, 'get', tuf(G, 'root.json'));
      assert.equal(res.status, 404, `${user.name}: ${res.text}`);
      assert.match(res.text, /METADATA_NOT_FOUND/);
    }
  });

  test('create with a push+pull token', async () => {
    const key = await callAs(ADMIN, 'get', tuf(G, 'timestamp.key'));
    assert.equal(key.status, 200, key.text);
    const created = await callAs(ADMIN, 'post', tuf(G), createBody(G, key.text));
    assert.equal(created.status, 200, created.text);
  });

  test('read with a pull token (the pull-only user)', async () => {
    const token = await fetchToken(READER, `repository:${G}:pull`);
    for (const file of ['root.json', 'targets.json', 'snapshot.json', 'timestamp.json', '1.root.json']) {
      const res = await call('get', tuf(G, file), token);
      assert.equal(res.status, 200, `${file}: ${res.text}`);
    }
    const feed = await call('get', `/v2/${G}/_trust/changefeed?change_id=0&records=10`, token);
    assert.equal(feed.status, 200, feed.text);
    assert.equal((JSON.parse(feed.text) as { count: number }).count, 1);
  });

  test('reads answered from the in-process cache are checked just the same', async () => {
    const pull = await fetchToken(READER, `repository:${G}:pull`);
    const root = await call('get', tuf(G, 'root.json'), pull);
    assert.equal(root.status, 200);
    const checksum = createHash('sha256').update(root.text).digest('hex');
    const paths = [tuf(G, 'root.json'), tuf(G, 'timestamp.json'), tuf(G, `root.${checksum}.json`), tuf(G, '1.root.json')];
    for (const urlPath of paths) assert.equal((await call('get', urlPath, pull)).status, 200, `${urlPath} warm`);
    const now = Math.floor(Date.now() / 1000);
    const others = await fetchToken(ADMIN, `repository:${PUBLIC}:*`);
    for (const urlPath of paths) {
      const scope = `repository:${G}:pull`;
      assertUnauthorized(await call('get', urlPath), scope, undefined, `${urlPath} without a token`);
      assertUnauthorized(await call('get', urlPath, others), scope, 'insufficient_scope', `${urlPath} with another repository's token`);
      assertUnauthorized(
        await call('get', urlPath, own.mint({ access: [repoGrant(G, 'pull')], exp: now - 120 })),
        scope,
        'invalid_token',
        `${urlPath} expired`,
      );
      assertUnauthorized(await call('get', urlPath, stranger.mint({ access: [repoGrant(G, 'pull')] })), scope, 'invalid_token', `${urlPath} untrusted`);
      assertUnauthorized(await call('get', urlPath, `${pull.slice(0, -4)}AAAA`), scope, 'invalid_token', `${urlPath} tampered signature`);
    }
  });

  test('a repository’s history needs pull on it', async () => {
    const res = await callAs(READER, 'get', `/_signet/history/${G}`);
    assert.equal(res.status, 200, res.text);
  });

  test('the pull-only user gets nothing outside its prefix', async () => {
    const res = await callAs(READER, 'get', tuf(PRIVATE, 'root.json'));
    assertUnauthorized(res, `repository:${PRIVATE}:pull`, 'insufficient_scope', 'reader on private');
  });

  test('global changefeed with a catalog token', async () => {
    const res = await callAs(ADMIN, 'get', '/v2/_trust/changefeed?change_id=0&records=100');
    assert.equal(res.status, 200, res.text);
    const page = JSON.parse(res.text) as { records: { GUN: string }[] };
    assert.ok(
      page.records.some((r) => r.GUN === G),
      res.text,
    );
  });

  test('rotate the snapshot key with a * token', async () => {
    const res = await call('post', tuf(G, 'snapshot.key'), await fetchToken(ADMIN, `repository:${G}:*`));
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /"keytype":"ed25519"/);
  });

  test('delete with a * token; then reads are 404', async () => {
    const token = await fetchToken(ADMIN, `repository:${G}:*`);
    const res = await call('delete', tuf(G), token);
    assert.equal(res.status, 200, res.text);
    const gone = await call('get', tuf(G, 'root.json'), token);
    assert.equal(gone.status, 404, gone.text);
    const rows = await server.context.database.db.selectFrom('tuf_files').select('id').where('gun', '=', G).execute();
    assert.deepEqual(rows, []);
  });
});

describe('configuration', () => {
  const env = (bundle: string) => ({
    SIGNET_AUTH: 'token',
    SIGNET_AUTH_REALM: 'http://127.0.0.1:1/auth/token',
    SIGNET_AUTH_SERVICE: SERVICE,
    SIGNET_AUTH_ISSUER: ISSUER,
    SIGNET_AUTH_ROOT_CERT_BUNDLE: bundle,
  });

  test('Signet refuses to start with a missing or garbage root certificate bundle', async () => {
    const db = await createTestDatabase();
    try {
      const missing = path.join(work, 'no-such-bundle.pem');
      await assert.rejects(
        startTestServer(env(missing), db),
        (e: Error) => e instanceof ConfigError && e.message.startsWith(`SIGNET_AUTH_ROOT_CERT_BUNDLE ${missing} cannot be read: ENOENT`),
      );
      const garbage = path.join(work, 'garbage.pem');
      writeFileSync(garbage, 'this is not a certificate\n');
      await assert.rejects(startTestServer(env(garbage), db), {
        message: `SIGNET_AUTH_ROOT_CERT_BUNDLE ${garbage} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----" blocks)`,
      });
      const broken = path.join(work, 'broken.pem');
      writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      await assert.rejects(
        startTestServer(env(broken), db),
        (e: Error) => e instanceof ConfigError && e.message.startsWith(`SIGNET_AUTH_ROOT_CERT_BUNDLE ${broken}: certificate 1 of 1 is not valid: `),
      );
    } finally {
      await db.drop();
    }
  });

  test('SIGNET_AUTH=token without a realm (or any other auth setting) is a configuration error', async () => {
    const db = await createTestDatabase();
    try {
      const { SIGNET_AUTH_REALM: _realm, ...noRealm } = env(path.join(work, 'token-ca.pem'));
      assert.throws(
        () => testConfig(db, noRealm),
        (e: Error) =>
          e instanceof ConfigError &&
          /SIGNET_AUTH: SIGNET_AUTH=token needs SIGNET_AUTH_REALM, SIGNET_AUTH_SERVICE, SIGNET_AUTH_ISSUER and SIGNET_AUTH_ROOT_CERT_BUNDLE/.test(e.message),
      );
      assert.throws(() => testConfig(db, { ...env(path.join(work, 'token-ca.pem')), SIGNET_AUTH_REALM: '' }), ConfigError, 'empty realm');
      for (const key of ['SIGNET_AUTH_SERVICE', 'SIGNET_AUTH_ISSUER', 'SIGNET_AUTH_ROOT_CERT_BUNDLE'] as const) {
        assert.throws(() => testConfig(db, { ...env(path.join(work, 'token-ca.pem')), [key]: '' }), ConfigError, key);
      }
      await assert.rejects(startTestServer(noRealm, db), ConfigError);
      assert.throws(() => testConfig(db, { SIGNET_AUTH: 'htpasswd' }), ConfigError, 'only none and token exist');
    } finally {
      await db.drop();
    }
  });
});
