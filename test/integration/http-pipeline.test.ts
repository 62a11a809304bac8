/**
 * The fast path and the express path answer alike: the same server context served twice, once
 * with the fast path in front of express and once by express alone, must give the same status,
 * headers and body for a refused name, a prefix refusal, a missing or short token, and a
 * cached read (which the fast path answers without express).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { TokenAuthenticator } from '../../src/auth/token-auth.js';
import { createApp } from '../../src/http/app.js';
import { withFastReads } from '../../src/http/fast-path.js';
import { observe } from '../../src/http/observe.js';
import { createLogger } from '../../src/log.js';
import { createRepository } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { repoGrant, tokenSigner } from '../support/tokens.js';

const GUN = 'registry.example.com/pipeline/app';
const signer = tokenSigner({ issuer: 'issuer', service: 'signet.test' });
const bearer = (...actions: string[]) => `Bearer ${signer.mint({ access: [repoGrant(GUN, ...actions)] })}`;

let server: TestServer;
let fast: http.Server;
let slow: http.Server;
let expressCalls = 0;

const listen = (handler: http.RequestListener) =>
  new Promise<http.Server>((resolve) => {
    const s = http.createServer(handler);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(s: http.Server, path: string, authorization?: string, method = 'GET'): Promise<Answer> {
  const { port } = s.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: authorization ? { authorization } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const headers = { ...res.headers };
        // Per request or per connection, not per answer.
        for (const h of ['date', 'x-request-id', 'connection', 'keep-alive']) delete headers[h];
        resolve({ status: res.statusCode!, headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  server = await startTestServer();
  await createRepository(server.url, GUN);
  const ctx = server.context;
  const logger = createLogger('silent');
  const auth = new TokenAuthenticator({ realm: 'https://auth.example/token', service: 'signet.test', issuer: 'issuer', rootCertBundle: signer.certPem });
  const cache = { currentMaxAge: 300, consistentMaxAge: 31536000 };
  const gunPrefixes = ['registry.example.com/'];
  const options = { auth, cache, logger, gunPrefixes, expiryWarningSeconds: 86400, limits: { maxBodyBytes: 1 << 20, maxPartBytes: 1 << 20, maxParts: 16 } };
  const app = createApp(ctx, options);
  const counted: http.RequestListener = (req, res) => {
    expressCalls++;
    app(req, res);
  };
  fast = await listen(observe(ctx.metrics, logger, withFastReads(ctx, { cache, auth, gunPrefixes }, counted)));
  slow = await listen(observe(ctx.metrics, logger, createApp(ctx, options)));
});

after(async () => {
  for (const s of [fast, slow]) await new Promise((resolve) => s?.close(resolve));
  await server?.close();
});

async function same(path: string, authorization?: string, method = 'GET'): Promise<Answer> {
  const viaFast = await get(fast, path, authorization, method);
  const viaExpress = await get(slow, path, authorization, method);
  assert.deepEqual(viaFast, viaExpress, `${method} ${path}`);
  return viaFast;
}

test('a refused name: the same 400 INVALID_GUN with the reason', async () => {
  const a = await same('/v2/registry.example.com/a/../b/_trust/tuf/root.json', bearer('pull'));
  assert.equal(a.status, 400);
  assert.match(a.body, /"code":"INVALID_GUN"/);
  assert.match(a.body, /path segment/);
  const undecodable = await same('/v2/registry.example.com/a%ff/_trust/tuf/root.json', bearer('pull'));
  assert.equal(undecodable.status, 401, 'an undecodable read finds no route; no route still needs a token');
});

test('a prefix refusal: the same 404 on reads, before any token is asked for', async () => {
  const a = await same('/v2/elsewhere.example/app/_trust/tuf/root.json');
  assert.equal(a.status, 404);
  assert.match(a.body, /"code":"METADATA_NOT_FOUND"/);
  assert.equal(a.headers['www-authenticate'], undefined);
});

test('a missing or short token: the same 401, challenge and envelope', async () => {
  for (const authorization of [undefined, bearer('push'), 'Bearer not-a-token']) {
    const a = await same(`/v2/${GUN}/_trust/tuf/root.json`, authorization);
    assert.equal(a.status, 401);
    assert.match(String(a.headers['www-authenticate']), new RegExp(`scope="repository:${GUN}:pull"`));
    assert.match(a.body, /"code":"UNAUTHORIZED"/);
  }
});

test('a cached read: the fast path answers it without express, with the same headers and bytes', async () => {
  const token = bearer('pull');
  for (const role of ['root', 'targets', 'timestamp', 'snapshot']) await get(slow, `/v2/${GUN}/_trust/tuf/${role}.json`, token); // fill the cache
  for (const role of ['root', 'targets', 'timestamp']) {
    const before = expressCalls;
    const a = await same(`/v2/${GUN}/_trust/tuf/${role}.json`, token);
    assert.equal(expressCalls, before, `${role}.json was answered by the fast path`);
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(a.headers['cache-control'], 'public, max-age=300, s-maxage=300, must-revalidate');
    assert.ok(a.headers['last-modified']);
    assert.equal(Number(a.headers['content-length']), Buffer.byteLength(a.body));
  }
  const root = await get(fast, `/v2/${GUN}/_trust/tuf/root.json`, token);
  const version = (JSON.parse(root.body) as { signed: { version: number } }).signed.version;
  await get(slow, `/v2/${GUN}/_trust/tuf/${version}.root.json`, token);
  const before = expressCalls;
  const consistent = await same(`/v2/${GUN}/_trust/tuf/${version}.root.json`, token);
  assert.equal(consistent.status, 200);
  assert.equal(consistent.headers['cache-control'], 'public, max-age=31536000, s-maxage=31536000');
  assert.equal(expressCalls, before, 'a read by version was answered by the fast path');
});
