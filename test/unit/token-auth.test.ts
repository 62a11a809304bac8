/**
 * TokenAuthenticator (src/auth/token-auth.ts): which tokens it accepts (an `x5c` certificate in
 * the root bundle or chained to a CA in it, or a `kid` naming a bundle key), which it refuses
 * and why (validity window with 60 s leeway, issuer, audience, untrusted or broken chains,
 * missing scopes), and the exact 401 challenge it builds for each route's required access.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { requiredAccess, scopeOf, type Access } from '../../src/auth/access.js';
import { libtrustKeyId, signJws } from '../../src/auth/jws.js';
import { selfSignedCertificate } from '../../src/auth/self-signed-certificate.js';
import { loadCertificateBundle, TokenAuthenticator, type AuthResult } from '../../src/auth/token-auth.js';
import type { Route } from '../../src/http/paths.js';
import { issueCertificate, makeTestCa } from '../support/certificates.js';
import { catalogGrant, repoGrant, tokenSigner } from '../support/tokens.js';

const REALM = 'https://auth.example.com/token';
const SERVICE = 'signet.example.com';
const ISSUER = 'registry-token-issuer';
const GUN = 'registry.example.com:5000/team/app';
const OTHER_GUN = 'registry.example.com:5000/team/other';
const NOW = Math.floor(Date.now() / 1000) * 1000; // one clock for every check, whole seconds
const NOW_S = NOW / 1000;

const PULL = requiredAccess({ kind: 'current', gun: GUN })!;
const PUSH_PULL = requiredAccess({ kind: 'update', gun: GUN })!;
const STAR = requiredAccess({ kind: 'delete', gun: GUN })!;
const CATALOG = requiredAccess({ kind: 'ping' })!;

// The token service's self-signed signer, a CA with a leaf signer, and a stranger nobody trusts.
const signer = tokenSigner({ issuer: ISSUER, service: SERVICE, nowMs: () => NOW });
const ca = makeTestCa('Token CA');
const leaf = ca.issueLeaf('token signer (leaf)');
const stranger = tokenSigner({ issuer: ISSUER, service: SERVICE, nowMs: () => NOW });

const auth = new TokenAuthenticator({ realm: REALM, service: SERVICE, issuer: ISSUER, rootCertBundle: signer.certPem + ca.cert.pem });

const bearer = (token: string) => `Bearer ${token}`;

function accepted(result: AuthResult, what = ''): void {
  assert.equal(result.ok, true, `${what}: ${result.ok ? '' : `${result.error}: ${result.reason}`}`);
}

function refused(result: AuthResult, error: 'missing' | 'invalid_token' | 'insufficient_scope', reason: RegExp, what = ''): void {
  assert.equal(result.ok, false, `${what}: expected a refusal`);
  if (result.ok) return;
  assert.equal(result.error, error, `${what}: ${result.reason}`);
  assert.match(result.reason, reason, what);
}

/** A token signed by `leaf` (x5c = [leaf] or [leaf, CA]). */
function leafToken(claims: Record<string, unknown>, chain: string[] = [leaf.cert.x5c]): string {
  return signJws({ alg: 'ES256', typ: 'JWT', x5c: chain }, { iss: ISSUER, aud: SERVICE, exp: NOW_S + 300, nbf: NOW_S - 1, ...claims }, leaf.privateKey);
}

describe('TokenAuthenticator: accepted tokens', () => {
  test('x5c: the signer’s self-signed certificate is in the bundle', () => {
    const result = auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'pull')] })), PULL, NOW);
    accepted(result, 'self-signed');
    assert.ok(result.ok);
    assert.equal(result.subject, 'test-user');
    // The verified claims come with it (the identity server-held signers' rules look at).
    assert.equal(result.claims['iss'], ISSUER);
    assert.deepEqual(result.claims['access'], [repoGrant(GUN, 'pull')]);
  });

  test('x5c: a leaf certificate issued by a CA in the bundle, with or without the CA in the chain', () => {
    accepted(auth.authorize(bearer(leafToken({ access: [repoGrant(GUN, 'pull')] })), PULL, NOW), '[leaf]');
    accepted(auth.authorize(bearer(leafToken({ access: [repoGrant(GUN, 'pull')] }, [leaf.cert.x5c, ca.cert.x5c])), PULL, NOW), '[leaf, CA]');
  });

  test('x5c: a leaf under an intermediate CA under a root in the bundle', () => {
    const intermediate = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const intermediateCert = issueCertificate({
      commonName: 'Intermediate',
      subject: intermediate.publicKey,
      issuer: { commonName: ca.commonName, privateKey: ca.privateKey },
      isCA: true,
    });
    const deep = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const deepCert = issueCertificate({
      commonName: 'deep signer',
      subject: deep.publicKey,
      issuer: { commonName: 'Intermediate', privateKey: intermediate.privateKey },
    });
    const token = signJws(
      { alg: 'ES256', x5c: [deepCert.x5c, intermediateCert.x5c] },
      { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access: [repoGrant(GUN, 'pull')] },
      deep.privateKey,
    );
    accepted(auth.authorize(bearer(token), PULL, NOW));
  });

  test('kid: the libtrust key ID of a key in the bundle, without x5c', () => {
    const token = signer.mint({ access: [repoGrant(GUN, 'pull')] }, { x5c: undefined, kid: libtrustKeyId(signer.publicKey) });
    accepted(auth.authorize(bearer(token), PULL, NOW), 'kid of the self-signed signer');
    const caSigned = signJws(
      { alg: 'ES256', kid: libtrustKeyId(ca.publicKey) },
      { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access: [repoGrant(GUN, 'pull')] },
      ca.privateKey,
    );
    accepted(auth.authorize(bearer(caSigned), PULL, NOW), 'kid of the CA key');
  });

  test('RSA signers work as well (RS256 and PS256)', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = selfSignedCertificate(rsa.privateKey, rsa.publicKey, { commonName: 'rsa signer' });
    const rsaAuth = new TokenAuthenticator({ realm: REALM, service: SERVICE, issuer: ISSUER, rootCertBundle: pem });
    for (const alg of ['RS256', 'PS256']) {
      const token = signJws(
        { alg, x5c: [pem.replace(/-----[A-Z ]+-----|\s/g, '')] },
        { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access: [repoGrant(GUN, 'pull')] },
        rsa.privateKey,
      );
      accepted(rsaAuth.authorize(bearer(token), PULL, NOW), alg);
    }
  });

  test('the Bearer scheme is case-insensitive and trailing spaces are allowed', () => {
    const token = signer.mint({ access: [repoGrant(GUN, 'pull')] });
    accepted(auth.authorize(`bearer ${token}`, PULL, NOW));
    accepted(auth.authorize(`BEARER  ${token}  `, PULL, NOW));
  });
});

describe('TokenAuthenticator: validity window (60 s leeway)', () => {
  const access = [repoGrant(GUN, 'pull')];

  test('expired beyond the leeway is refused; within the leeway accepted', () => {
    refused(auth.authorize(bearer(signer.mint({ access, exp: NOW_S - 61 })), PULL, NOW), 'invalid_token', /expired/, '61 s late');
    refused(auth.authorize(bearer(signer.mint({ access, exp: NOW_S - 3600 })), PULL, NOW), 'invalid_token', /expired/, 'an hour late');
    accepted(auth.authorize(bearer(signer.mint({ access, exp: NOW_S - 59 })), PULL, NOW), '59 s late');
    accepted(auth.authorize(bearer(signer.mint({ access, exp: NOW_S - 60 })), PULL, NOW), 'exactly 60 s late');
  });

  test('nbf in the future beyond the leeway is refused; within the leeway accepted', () => {
    refused(auth.authorize(bearer(signer.mint({ access, nbf: NOW_S + 61 })), PULL, NOW), 'invalid_token', /not valid yet/, '61 s early');
    accepted(auth.authorize(bearer(signer.mint({ access, nbf: NOW_S + 59 })), PULL, NOW), '59 s early');
    accepted(auth.authorize(bearer(signer.mint({ access, nbf: undefined })), PULL, NOW), 'no nbf');
  });

  test('a custom leeway is honoured', () => {
    const strict = new TokenAuthenticator({ realm: REALM, service: SERVICE, issuer: ISSUER, rootCertBundle: signer.certPem, leewaySeconds: 0 });
    refused(strict.authorize(bearer(signer.mint({ access, exp: NOW_S - 1 })), PULL, NOW), 'invalid_token', /expired/);
    accepted(strict.authorize(bearer(signer.mint({ access, exp: NOW_S })), PULL, NOW));
  });

  test('a signing certificate outside its own validity is refused', () => {
    const old = ca.issueLeaf('expired signer', { notBefore: new Date(NOW - 10 * 86400_000), notAfter: new Date(NOW - 86400_000) });
    const token = signJws({ alg: 'ES256', x5c: [old.cert.x5c] }, { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access }, old.privateKey);
    refused(auth.authorize(bearer(token), PULL, NOW), 'invalid_token', /validity/, 'expired certificate');
    const early = ca.issueLeaf('future signer', { notBefore: new Date(NOW + 86400_000), notAfter: new Date(NOW + 10 * 86400_000) });
    const token2 = signJws({ alg: 'ES256', x5c: [early.cert.x5c] }, { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access }, early.privateKey);
    refused(auth.authorize(bearer(token2), PULL, NOW), 'invalid_token', /validity/, 'not yet valid certificate');
  });
});

describe('TokenAuthenticator: refused tokens', () => {
  const access = [repoGrant(GUN, 'pull')];

  test('wrong issuer', () => {
    refused(auth.authorize(bearer(signer.mint({ access, iss: 'someone-else' })), PULL, NOW), 'invalid_token', /issuer/);
    refused(auth.authorize(bearer(signer.mint({ access, iss: undefined })), PULL, NOW), 'invalid_token', /malformed/, 'no iss');
  });

  test('wrong audience, as a string or an array; an array containing the service is fine', () => {
    refused(auth.authorize(bearer(signer.mint({ access, aud: 'another-service' })), PULL, NOW), 'invalid_token', /another service/, 'string');
    refused(auth.authorize(bearer(signer.mint({ access, aud: ['a', 'b'] })), PULL, NOW), 'invalid_token', /another service/, 'array');
    refused(auth.authorize(bearer(signer.mint({ access, aud: [] })), PULL, NOW), 'invalid_token', /another service/, 'empty array');
    accepted(auth.authorize(bearer(signer.mint({ access, aud: ['a', SERVICE] })), PULL, NOW), 'array with the service');
    accepted(auth.authorize(bearer(signer.mint({ access, aud: [SERVICE] })), PULL, NOW), 'one-element array');
  });

  test('malformed claims', () => {
    refused(auth.authorize(bearer(signer.mint({ access, exp: undefined })), PULL, NOW), 'invalid_token', /malformed/, 'no exp');
    refused(auth.authorize(bearer(signer.mint({ access, exp: String(NOW_S + 60) })), PULL, NOW), 'invalid_token', /malformed/, 'string exp');
    refused(auth.authorize(bearer(signer.mint({ access: [{ type: 'repository', name: GUN }] })), PULL, NOW), 'invalid_token', /malformed/, 'no actions');
  });

  test('untrusted signing key: a self-signed certificate not in the bundle, an unknown kid, no key at all', () => {
    refused(auth.authorize(bearer(stranger.mint({ access })), PULL, NOW), 'invalid_token', /untrusted key/, 'stranger x5c');
    const unknownKid = stranger.mint({ access }, { x5c: undefined, kid: libtrustKeyId(stranger.publicKey) });
    refused(auth.authorize(bearer(unknownKid), PULL, NOW), 'invalid_token', /untrusted key/, 'stranger kid');
    const noKey = signer.mint({ access }, { x5c: undefined });
    refused(auth.authorize(bearer(noKey), PULL, NOW), 'invalid_token', /no signing key/, 'neither x5c nor kid');
    const otherCa = makeTestCa('Token CA'); // same name as the trusted CA, different key
    const impostor = otherCa.issueLeaf('token signer (leaf)');
    const token = signJws({ alg: 'ES256', x5c: [impostor.cert.x5c] }, { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access }, impostor.privateKey);
    refused(auth.authorize(bearer(token), PULL, NOW), 'invalid_token', /untrusted key/, 'leaf of a same-named CA');
    const viaOtherCa = signJws(
      { alg: 'ES256', x5c: [impostor.cert.x5c, otherCa.cert.x5c] },
      { iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access },
      impostor.privateKey,
    );
    refused(auth.authorize(bearer(viaOtherCa), PULL, NOW), 'invalid_token', /untrusted key/, '[leaf, untrusted CA]');
  });

  test('a trusted certificate in x5c does not make a stranger’s signature valid', () => {
    const token = stranger.mint({ access }, { x5c: signer.x5c });
    refused(auth.authorize(bearer(token), PULL, NOW), 'invalid_token', /signature is invalid/);
    const kidForged = stranger.mint({ access }, { x5c: undefined, kid: libtrustKeyId(signer.publicKey) });
    refused(auth.authorize(bearer(kidForged), PULL, NOW), 'invalid_token', /signature is invalid/);
  });

  test('x5c chain broken: a certificate not issued by the next one', () => {
    const otherCa = makeTestCa('Other CA');
    // [leaf, otherCA]: otherCA is not leaf's issuer (even if it were trusted).
    const bundleWithOther = new TokenAuthenticator({ realm: REALM, service: SERVICE, issuer: ISSUER, rootCertBundle: ca.cert.pem + otherCa.cert.pem });
    refused(
      bundleWithOther.authorize(bearer(leafToken({ access }, [leaf.cert.x5c, otherCa.cert.x5c])), PULL, NOW),
      'invalid_token',
      /chain is broken/,
      'wrong issuer',
    );
    // [leaf, fake CA with the same name but another key]: names match, the signature does not.
    const sameName = makeTestCa('Token CA');
    refused(
      auth.authorize(bearer(leafToken({ access }, [leaf.cert.x5c, sameName.cert.x5c])), PULL, NOW),
      'invalid_token',
      /chain is broken/,
      'same-named issuer',
    );
    // Order matters: [CA, leaf] is not a chain.
    refused(auth.authorize(bearer(leafToken({ access }, [ca.cert.x5c, leaf.cert.x5c])), PULL, NOW), 'invalid_token', /chain is broken|untrusted/, 'reversed');
  });

  test('x5c that is not a certificate, or too long a chain', () => {
    refused(auth.authorize(bearer(leafToken({ access }, ['bm90IGEgY2VydA=='])), PULL, NOW), 'invalid_token', /malformed/, 'garbage');
    const long = Array.from({ length: 11 }, () => leaf.cert.x5c);
    refused(auth.authorize(bearer(leafToken({ access }, long)), PULL, NOW), 'invalid_token', /too long/, '11 certificates');
  });

  test('tokens that are not JWS at all', () => {
    for (const token of ['abc', 'a.b', 'a.b.c', `${signer.mint({ access })}x.y`]) {
      refused(auth.authorize(bearer(token), PULL, NOW), 'invalid_token', /.+/, token.slice(0, 10));
    }
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: SERVICE, exp: NOW_S + 60, access })).toString('base64url')}.`;
    refused(auth.authorize(bearer(none), PULL, NOW), 'invalid_token', /no signing key|untrusted|signature/, 'alg none');
    refused(
      auth.authorize(bearer(none.replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'none', x5c: signer.x5c })).toString('base64url'))), PULL, NOW),
      'invalid_token',
      /signature is invalid/,
      'alg none + trusted x5c',
    );
  });
});

describe('TokenAuthenticator: scopes', () => {
  test('a token for another repository does not open this one', () => {
    const token = signer.mint({ access: [repoGrant(OTHER_GUN, '*')] });
    refused(auth.authorize(bearer(token), PULL, NOW), 'insufficient_scope', /repository:registry\.example\.com:5000\/team\/app:pull/);
    // Names match exactly, not by prefix.
    refused(
      auth.authorize(bearer(signer.mint({ access: [repoGrant('registry.example.com:5000/team', '*')] })), PULL, NOW),
      'insufficient_scope',
      /lacks/,
      'prefix',
    );
    refused(auth.authorize(bearer(signer.mint({ access: [repoGrant(`${GUN}/sub`, '*')] })), PULL, NOW), 'insufficient_scope', /lacks/, 'longer name');
    // Type matters too.
    refused(
      auth.authorize(bearer(signer.mint({ access: [{ type: 'registry', name: GUN, actions: ['*'] }] })), PULL, NOW),
      'insufficient_scope',
      /lacks/,
      'type',
    );
  });

  test('a pull token on a push route is refused', () => {
    const result = auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'pull')] })), PUSH_PULL, NOW);
    refused(result, 'insufficient_scope', /^token lacks repository:registry\.example\.com:5000\/team\/app:push$/);
  });

  test('a push-only token on a route needing push and pull is refused', () => {
    const result = auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'push')] })), PUSH_PULL, NOW);
    refused(result, 'insufficient_scope', /^token lacks repository:registry\.example\.com:5000\/team\/app:pull$/);
  });

  test('push and pull may come from separate grants of the same resource', () => {
    accepted(auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'push'), repoGrant(GUN, 'pull')] })), PUSH_PULL, NOW));
  });

  test('push+pull is not *: DELETE and key rotation need *', () => {
    refused(auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'push', 'pull')] })), STAR, NOW), 'insufficient_scope', /:\*$/);
  });

  test('action * satisfies anything on its resource', () => {
    const token = signer.mint({ access: [repoGrant(GUN, '*')] });
    for (const [required, what] of [
      [PULL, 'pull'],
      [PUSH_PULL, 'push,pull'],
      [STAR, '*'],
    ] as const)
      accepted(auth.authorize(bearer(token), required, NOW), what);
    refused(auth.authorize(bearer(token), CATALOG, NOW), 'insufficient_scope', /registry:catalog:\*/, 'but not the catalog');
    accepted(auth.authorize(bearer(signer.mint({ access: [catalogGrant('*')] })), CATALOG, NOW), 'catalog *');
  });

  test('a token without access (what anonymous callers get) passes only routes needing nothing', () => {
    for (const access of [[], null, undefined]) {
      refused(auth.authorize(bearer(signer.mint({ access })), PULL, NOW), 'insufficient_scope', /lacks/, String(access));
    }
    accepted(auth.authorize(bearer(signer.mint({ access: [] })), [], NOW), 'no access required');
  });

  test('the subject is the token’s sub ("" when absent)', () => {
    const result = auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'pull')], sub: undefined })), PULL, NOW);
    assert.ok(result.ok);
    assert.equal(result.subject, '');
    assert.equal(result.claims['sub'], undefined);
  });
});

describe('TokenAuthenticator: challenges', () => {
  const base = `Bearer realm="${REALM}",service="${SERVICE}"`;

  test('missing or non-Bearer Authorization: error "missing", challenge without error=', () => {
    for (const header of [undefined, '', 'Bearer', 'Bearer ', `Basic ${Buffer.from('u:p').toString('base64')}`, 'Token abc']) {
      const result = auth.authorize(header, PUSH_PULL, NOW);
      refused(result, 'missing', /no bearer token/, String(header));
      assert.equal(!result.ok && result.challenge, `${base},scope="repository:${GUN}:push,pull"`);
    }
  });

  test('invalid token: ,error="invalid_token"', () => {
    const result = auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, '*')], exp: NOW_S - 3600 })), PUSH_PULL, NOW);
    assert.equal(!result.ok && result.challenge, `${base},scope="repository:${GUN}:push,pull",error="invalid_token"`);
  });

  test('insufficient scope: ,error="insufficient_scope"', () => {
    const result = auth.authorize(bearer(signer.mint({ access: [repoGrant(GUN, 'pull')] })), PUSH_PULL, NOW);
    assert.equal(!result.ok && result.challenge, `${base},scope="repository:${GUN}:push,pull",error="insufficient_scope"`);
  });

  test('scope per route: pull, push,pull, *, and registry:catalog:* for routes without a GUN', () => {
    const cases: [Route, string][] = [
      [{ kind: 'ping' }, 'registry:catalog:*'],
      [{ kind: 'globalChangefeed' }, 'registry:catalog:*'],
      [{ kind: 'notFound' }, 'registry:catalog:*'],
      [{ kind: 'current', gun: GUN, role: 'root' }, `repository:${GUN}:pull`],
      [{ kind: 'byChecksum', gun: GUN, role: 'targets', checksum: 'a'.repeat(64) }, `repository:${GUN}:pull`],
      [{ kind: 'byVersion', gun: GUN, role: 'snapshot', version: 2 }, `repository:${GUN}:pull`],
      [{ kind: 'changefeed', gun: GUN }, `repository:${GUN}:pull`],
      [{ kind: 'update', gun: GUN }, `repository:${GUN}:push,pull`],
      [{ kind: 'getKey', gun: GUN, role: 'timestamp' }, `repository:${GUN}:push,pull`],
      [{ kind: 'getKey', gun: GUN, role: 'snapshot' }, `repository:${GUN}:push,pull`],
      [{ kind: 'delete', gun: GUN }, `repository:${GUN}:*`],
      [{ kind: 'rotateKey', gun: GUN, role: 'timestamp' }, `repository:${GUN}:*`],
      [{ kind: 'rotateKey', gun: GUN, role: 'snapshot' }, `repository:${GUN}:*`],
    ];
    for (const [route, scope] of cases) {
      const required = requiredAccess(route)!;
      assert.equal(scopeOf(required), scope, route.kind);
      const result = auth.authorize(undefined, required, NOW);
      assert.equal(!result.ok && result.challenge, `${base},scope="${scope}"`, route.kind);
    }
    assert.equal(requiredAccess({ kind: 'health' }), null, 'health is open');
  });

  test('several resources are space-separated; quotes and backslashes are escaped', () => {
    const required: Access[] = [
      { type: 'repository', name: GUN, action: 'pull' },
      { type: 'repository', name: OTHER_GUN, action: 'push' },
      { type: 'repository', name: GUN, action: 'push' },
    ];
    assert.equal(scopeOf(required), `repository:${GUN}:pull,push repository:${OTHER_GUN}:push`);
    const odd = new TokenAuthenticator({ realm: 'https://a/"x"\\', service: 's"', issuer: ISSUER, rootCertBundle: signer.certPem });
    assert.equal(
      odd.challenge([{ type: 'repository', name: 'a"b', action: 'pull' }]),
      'Bearer realm="https://a/\\"x\\"\\\\",service="s\\"",scope="repository:a\\"b:pull"',
    );
    assert.equal(odd.challenge([]), 'Bearer realm="https://a/\\"x\\"\\\\",service="s\\""', 'no scope part without required access');
  });
});

describe('certificate bundle', () => {
  test('every certificate of a PEM bundle is loaded; text around them is ignored', () => {
    const certs = loadCertificateBundle(`# token signers\n${signer.certPem}\nsome comment\n${ca.cert.pem}`);
    assert.equal(certs.length, 2);
    assert.equal(certs[1]!.subject, 'CN=Token CA');
  });

  test('a bundle without certificates, or with a broken one, is refused', () => {
    assert.throws(() => new TokenAuthenticator({ realm: REALM, service: SERVICE, issuer: ISSUER, rootCertBundle: '' }), /holds no certificate/);
    assert.throws(() => new TokenAuthenticator({ realm: REALM, service: SERVICE, issuer: ISSUER, rootCertBundle: 'not a pem file' }), /holds no certificate/);
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(() => loadCertificateBundle(key), /holds no certificate/, 'a public key is not a certificate');
    assert.throws(() => loadCertificateBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'));
  });
});
