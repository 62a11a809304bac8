/**
 * The guard sequence shared by the fast path and the express path: path decoding, GUN checks,
 * the prefix gate and the token, in that order, with notary's 404-versus-400 rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenAuthenticator } from '../../src/auth/token-auth.js';
import { authorizeRoute, guard, Refusal, resolveRoute } from '../../src/http/pipeline.js';
import { repoGrant, tokenSigner } from '../support/tokens.js';

const GUN = 'registry.example.com/team/app';
const signer = tokenSigner({ issuer: 'issuer', service: 'signet.test' });
const auth = new TokenAuthenticator({ realm: 'https://auth.example/token', service: 'signet.test', issuer: 'issuer', rootCertBundle: signer.certPem });
const bearer = (...actions: string[]) => `Bearer ${signer.mint({ access: [repoGrant(GUN, ...actions)] })}`;

function refusal(r: unknown): { code: string; detail: unknown; route: string | null } {
  assert.ok(r instanceof Refusal, `expected a refusal, got ${JSON.stringify(r)}`);
  return { code: r.error.code, detail: r.error.detail, route: r.route?.kind ?? null };
}

test('an undecodable name: a write is told why, a read finds nothing', () => {
  assert.deepEqual(refusal(resolveRoute('POST', '/v2/a%ff/_trust/tuf/', [])), {
    code: 'INVALID_GUN',
    detail: 'the name is not valid percent-encoded UTF-8',
    route: null,
  });
  assert.deepEqual(resolveRoute('GET', '/v2/a%ff/_trust/tuf/root.json', []), { kind: 'notFound' });
});

test('a refused name: INVALID_GUN with the reason, on reads and writes that match a route', () => {
  assert.deepEqual(refusal(resolveRoute('GET', '/v2/a/../b/_trust/tuf/root.json', [])), {
    code: 'INVALID_GUN',
    detail: 'the name has an empty, "." or ".." path segment',
    route: 'current',
  });
  assert.equal(refusal(resolveRoute('POST', '/v2/a*b/_trust/tuf/', [])).detail, 'the name contains "*"');
  // Reads keep notary's `[^*]+`: such a name matches no read route.
  assert.deepEqual(resolveRoute('GET', '/v2/a*b/_trust/tuf/root.json', []), { kind: 'notFound' });
});

test('the prefix gate: an update is told the prefixes, everything else finds nothing', () => {
  const prefixes = ['registry.example.com/', 'other.example/'];
  assert.deepEqual(refusal(resolveRoute('POST', '/v2/elsewhere/app/_trust/tuf/', prefixes)), {
    code: 'INVALID_GUN',
    detail: 'Require GUNs with prefix: [registry.example.com/ other.example/]',
    route: 'update',
  });
  for (const [method, path] of [
    ['GET', '/v2/elsewhere/app/_trust/tuf/root.json'],
    ['DELETE', '/v2/elsewhere/app/_trust/tuf/'],
    ['GET', '/v2/elsewhere/app/_trust/tuf/timestamp.key'],
    ['GET', '/_signet/history/elsewhere/app'],
  ] as const) {
    assert.equal(refusal(resolveRoute(method, path, prefixes)).code, 'METADATA_NOT_FOUND', `${method} ${path}`);
  }
  assert.deepEqual(resolveRoute('GET', `/v2/${GUN}/_trust/tuf/root.json`, prefixes), { kind: 'current', gun: GUN, role: 'root' });
});

test('the token: missing or short of scope is UNAUTHORIZED with the challenge; enough passes with the subject', () => {
  const route = { kind: 'update' as const, gun: GUN };
  for (const header of [undefined, bearer('pull')]) {
    const r = authorizeRoute(route, header, auth);
    assert.ok(r instanceof Refusal);
    assert.equal(r.error.code, 'UNAUTHORIZED');
    assert.deepEqual(r.error.detail, [
      { Type: 'repository', Class: '', Name: GUN, Action: 'push' },
      { Type: 'repository', Class: '', Name: GUN, Action: 'pull' },
    ]);
    assert.match(r.auth!.challenge, new RegExp(`^Bearer realm="https://auth.example/token",service="signet.test",scope="repository:${GUN}:push,pull"`));
    assert.ok(r.auth!.reason);
  }
  assert.equal(authorizeRoute(route, bearer('push', 'pull'), auth), 'test-user');
  assert.equal(authorizeRoute(route, undefined, undefined), undefined, 'no authentication configured');
  assert.equal(authorizeRoute({ kind: 'health' }, undefined, auth), undefined, 'health is open');
});

test('guard runs the name checks before the token: a refused name is never a 401', () => {
  const options = { auth, gunPrefixes: ['registry.example.com/'] };
  assert.equal(refusal(guard('POST', '/v2/elsewhere/_trust/tuf/', undefined, options)).code, 'INVALID_GUN');
  assert.equal(refusal(guard('GET', '/v2/a/./b/_trust/tuf/root.json', undefined, options)).code, 'INVALID_GUN');
  assert.equal(refusal(guard('GET', `/v2/${GUN}/_trust/tuf/root.json`, undefined, options)).code, 'UNAUTHORIZED');
  const passed = guard('GET', `/v2/${GUN}/_trust/tuf/root.json`, bearer('pull'), options);
  assert.ok(!(passed instanceof Refusal));
  assert.deepEqual(passed.route, { kind: 'current', gun: GUN, role: 'root' });
  assert.equal(passed.subject, 'test-user');
  // The caller's identity, for the routes that check it (server-held signers): the token's claims.
  assert.equal(passed.caller?.identity?.kind, 'registry-token');
  assert.equal(passed.caller?.identity?.claims['sub'], 'test-user');
});
