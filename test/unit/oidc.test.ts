/**
 * OIDC ID token checks (src/auth/oidc.ts, src/auth/jwks.ts) against an in-memory issuer: RS256
 * and ES256 tokens accepted; each refusal with its code (issuer, audience, expiry and the clock
 * skew, not-before, signature, unknown key, algorithm, claims, replay, lifetime); the JWKS
 * fetched once, again on an unknown kid (at most once per interval), kept when a fetch fails,
 * and bounded in size.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { JwksSource } from '../../src/auth/jwks.js';
import { signJws } from '../../src/auth/jws.js';
import { OIDC_ERROR_STATUS, OidcConfigError, OidcError, OidcIssuers, OidcVerifier, type ReplayGuard } from '../../src/auth/oidc.js';

const ISSUER = 'https://token.actions.example.com';
const AUDIENCE = 'https://signet.example.com';

interface Key {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function makeKey(kid: string, alg: 'RS256' | 'ES256'): Key {
  const pair = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, alg, privateKey: pair.privateKey, jwk: { ...(pair.publicKey.export({ format: 'jwk' }) as object), kid, alg, use: 'sig' } };
}

const rsa = makeKey('rsa-1', 'RS256');
const ec = makeKey('ec-1', 'ES256');
const NOW = 1_800_000_000;

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    sub: 'repo:octo-org/app:ref:refs/heads/main',
    aud: AUDIENCE,
    iat: NOW - 10,
    nbf: NOW - 10,
    exp: NOW + 300,
    jti: `jti-${Math.random()}`,
    repository: 'octo-org/app',
    ref: 'refs/heads/main',
    workflow: 'release',
    ...extra,
  };
}

const mint = (key: Key, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
  signJws({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header }, claims(extra), key.privateKey);

/** A fake issuer: its JWKS, a count of fetches, and a switch to make fetches fail. */
function fakeIssuer(keys: Key[]) {
  const state = { keys, fetches: 0, fail: false, body: null as string | null };
  const fetchImpl = (async () => {
    state.fetches++;
    if (state.fail) throw new Error('connect ECONNREFUSED');
    return new Response(state.body ?? JSON.stringify({ keys: state.keys.map((k) => k.jwk) }), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { state, fetchImpl };
}

class MemoryReplay implements ReplayGuard {
  readonly seen = new Map<string, Date>();
  async claimOnce(issuer: string, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
    const key = `${issuer} ${jti}`;
    const until = this.seen.get(key);
    if (until && until > now) return false;
    this.seen.set(key, expiresAt);
    return true;
  }
}

function verifier(keys: Key[] = [rsa, ec], extra: Partial<ConstructorParameters<typeof OidcVerifier>[0]> = {}) {
  const issuer = fakeIssuer(keys);
  const v = new OidcVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUrl: `${ISSUER}/.well-known/jwks`,
    fetchOptions: { fetch: issuer.fetchImpl, minRefreshSeconds: 0 },
    replay: new MemoryReplay(),
    ...extra,
  });
  return { v, ...issuer };
}

async function refused(work: Promise<unknown>, code: string): Promise<OidcError> {
  try {
    await work;
  } catch (e) {
    assert.ok(e instanceof OidcError, `expected an OidcError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, the token was accepted`);
}

const at = (seconds: number) => ({ nowMs: seconds * 1000 });

describe('OidcVerifier: accepted tokens', () => {
  test('RS256 and ES256 tokens from the issuer are accepted, with their claims', async () => {
    const { v, state } = verifier();
    for (const key of [rsa, ec]) {
      const identity = await v.verify(mint(key), at(NOW));
      assert.equal(identity.kind, 'oidc');
      assert.equal(identity.issuer, ISSUER);
      assert.equal(identity.subject, 'repo:octo-org/app:ref:refs/heads/main');
      assert.equal(identity.claims['repository'], 'octo-org/app');
    }
    assert.equal(state.fetches, 1, 'the JWKS is fetched once and cached');
  });

  test('an audience list naming Signet is accepted, as is a token without nbf or iat', async () => {
    const { v } = verifier();
    await v.verify(mint(rsa, { aud: ['other', AUDIENCE] }), at(NOW));
    await v.verify(mint(rsa, { nbf: undefined, iat: undefined }), at(NOW));
  });

  test('a token without kid is verified with the keys fit for its algorithm', async () => {
    const { v } = verifier();
    await v.verify(signJws({ alg: 'ES256', typ: 'JWT' }, claims(), ec.privateKey), at(NOW));
  });

  test('the clock skew is allowed both ways (60 s by default, configurable)', async () => {
    const { v } = verifier();
    await v.verify(mint(rsa, { exp: NOW - 59 }), at(NOW));
    await v.verify(mint(rsa, { nbf: NOW + 59, iat: NOW + 59 }), at(NOW));
    const strict = verifier([rsa], { clockSkewSeconds: 0 }).v;
    await refused(strict.verify(mint(rsa, { exp: NOW - 1 }), at(NOW)), 'OIDC_EXPIRED');
  });
});

describe('OidcVerifier: refusals', () => {
  test('expired beyond the skew', async () => {
    const e = await refused(verifier().v.verify(mint(rsa, { exp: NOW - 61 }), at(NOW)), 'OIDC_EXPIRED');
    assert.equal(e.status, 401);
    assert.equal((e.detail as { subject: string }).subject, 'repo:octo-org/app:ref:refs/heads/main', 'a verified token is named in the refusal');
  });

  test('not valid yet (nbf or iat in the future)', async () => {
    await refused(verifier().v.verify(mint(rsa, { nbf: NOW + 120 }), at(NOW)), 'OIDC_NOT_YET_VALID');
    await refused(verifier().v.verify(mint(rsa, { iat: NOW + 120, nbf: undefined }), at(NOW)), 'OIDC_NOT_YET_VALID');
  });

  test('another audience', async () => {
    await refused(verifier().v.verify(mint(rsa, { aud: 'sigstore' }), at(NOW)), 'OIDC_WRONG_AUDIENCE');
    await refused(verifier().v.verify(mint(rsa, { aud: [] }), at(NOW)), 'OIDC_WRONG_AUDIENCE');
  });

  test('another issuer, without fetching any key', async () => {
    const { v, state } = verifier();
    await refused(v.verify(mint(rsa, { iss: 'https://gitlab.example.com' }), at(NOW)), 'OIDC_WRONG_ISSUER');
    await refused(v.verify(mint(rsa, { iss: `${ISSUER}/` }), at(NOW)), 'OIDC_WRONG_ISSUER');
    assert.equal(state.fetches, 0);
  });

  test('a bad signature: tampered claims, or a key of the issuer that did not sign it', async () => {
    const { v } = verifier();
    const [h, , s] = mint(rsa).split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify(claims({ repository: 'evil/app' }))).toString('base64url')}.${s}`;
    await refused(v.verify(forged, at(NOW)), 'OIDC_BAD_SIGNATURE');
    const other = makeKey('rsa-1', 'RS256');
    await refused(v.verify(mint(other), at(NOW)), 'OIDC_BAD_SIGNATURE');
  });

  test('an unknown key: the JWKS is fetched again once, then the token is refused', async () => {
    const { v, state } = verifier();
    await v.verify(mint(rsa), at(NOW));
    await refused(v.verify(mint(makeKey('rsa-9', 'RS256')), at(NOW)), 'OIDC_UNKNOWN_KEY');
    assert.equal(state.fetches, 2);
  });

  test('algorithms that have no place here (none, HMAC) and algorithms not configured', async () => {
    const { v } = verifier();
    const body = Buffer.from(JSON.stringify(claims())).toString('base64url');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${body}.`;
    await refused(v.verify(none, at(NOW)), 'OIDC_MALFORMED');
    const hs = `${Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'rsa-1' })).toString('base64url')}.${body}.c2ln`;
    await refused(v.verify(hs, at(NOW)), 'OIDC_MALFORMED');
    const onlyEs = verifier([rsa, ec], { algorithms: ['ES256'] }).v;
    await refused(onlyEs.verify(mint(rsa), at(NOW)), 'OIDC_MALFORMED');
    await onlyEs.verify(mint(ec), at(NOW));
    assert.throws(() => verifier([rsa], { algorithms: ['HS256'] }), OidcConfigError);
  });

  test('a key whose JWK names another alg does not verify tokens of that alg', async () => {
    const mislabelled = { ...ec, jwk: { ...ec.jwk, alg: 'ES384' } };
    await refused(verifier([mislabelled]).v.verify(mint(ec), at(NOW)), 'OIDC_UNKNOWN_KEY');
  });

  test('malformed tokens and claims', async () => {
    const { v } = verifier();
    for (const token of ['', 'abc', 'a.b', 'a.b.c.d', '!!.??.**']) await refused(v.verify(token, at(NOW)), 'OIDC_MALFORMED');
    await refused(v.verify(mint(rsa, { sub: undefined }), at(NOW)), 'OIDC_MALFORMED');
    await refused(v.verify(mint(rsa, { exp: 'tomorrow' }), at(NOW)), 'OIDC_MALFORMED');
    await refused(v.verify(mint(rsa, { aud: 42 }), at(NOW)), 'OIDC_MALFORMED');
  });

  test('a token that lives too long is refused (its jti would be kept as long)', async () => {
    await refused(verifier().v.verify(mint(rsa, { exp: NOW + 2 * 86400 }), at(NOW)), 'OIDC_MALFORMED');
    await verifier([rsa], { maxLifetimeSeconds: 3 * 86400 }).v.verify(mint(rsa, { exp: NOW + 2 * 86400 }), at(NOW));
  });

  test('claim conditions: of the issuer and of the caller, all must hold (403)', async () => {
    const { v } = verifier([rsa], { conditions: [{ claim: 'repository', glob: 'octo-org/*' }] });
    await v.verify(mint(rsa), {
      ...at(NOW),
      conditions: [
        { claim: 'ref', glob: 'refs/heads/**' },
        { claim: 'workflow', equals: 'release' },
      ],
    });
    await refused(v.verify(mint(rsa, { repository: 'evil-org/app' }), at(NOW)), 'OIDC_CLAIMS_MISMATCH');
    const e = await refused(
      v.verify(mint(rsa, { ref: 'refs/heads/feature/x' }), { ...at(NOW), conditions: [{ claim: 'ref', glob: 'refs/heads/*' }] }),
      'OIDC_CLAIMS_MISMATCH',
    );
    assert.equal(e.status, 403);
    assert.deepEqual((e.detail as { failed: string[] }).failed, ['ref glob "refs/heads/*"']);
    assert.equal((e.detail as { claims: Record<string, unknown> }).claims['ref'], 'refs/heads/feature/x');
  });

  test('replay: a jti is accepted once until the token expires; a refused token does not use up its jti', async () => {
    const { v } = verifier();
    const token = mint(rsa, { jti: 'once' });
    await refused(v.verify(token, { ...at(NOW), conditions: [{ claim: 'workflow', equals: 'build' }] }), 'OIDC_CLAIMS_MISMATCH');
    await v.verify(token, at(NOW));
    await refused(v.verify(token, at(NOW + 1)), 'OIDC_REPLAYED');
    await refused(v.verify(mint(rsa, { jti: 'once' }), at(NOW + 2)), 'OIDC_REPLAYED');
    // The same jti from another issuer is another token.
    const other = new OidcIssuers([v]);
    await refused(other.verify(mint(rsa, { jti: 'once', iss: 'https://elsewhere.example.com' }), at(NOW)), 'OIDC_WRONG_ISSUER');
  });

  test('deferred replay: verify leaves the jti free until consume, which refuses a second time', async () => {
    const { v } = verifier();
    const token = mint(rsa, { jti: 'deferred' });
    const first = await v.verify(token, { ...at(NOW), deferReplay: true });
    const second = await v.verify(token, { ...at(NOW), deferReplay: true });
    await v.consume(first, at(NOW));
    await refused(v.consume(second, at(NOW)), 'OIDC_REPLAYED');
    await refused(v.verify(token, at(NOW)), 'OIDC_REPLAYED');
    const issuers = new OidcIssuers([v]);
    const third = await issuers.verify(mint(rsa, { jti: 'deferred-2' }), { ...at(NOW), deferReplay: true });
    await issuers.consume(third, at(NOW));
    await refused(issuers.consume(third, at(NOW)), 'OIDC_REPLAYED');
    await refused(issuers.consume({ ...third, issuer: 'https://elsewhere.example.com' }), 'OIDC_WRONG_ISSUER');
  });

  test('with a replay guard a token must carry a jti', async () => {
    await refused(verifier().v.verify(mint(rsa, { jti: undefined }), at(NOW)), 'OIDC_MALFORMED');
    await refused(verifier().v.verify(mint(rsa, { jti: 'x'.repeat(300) }), at(NOW)), 'OIDC_MALFORMED');
    await verifier([rsa], { replay: undefined }).v.verify(mint(rsa, { jti: undefined }), at(NOW));
  });

  test('every refusal is a 4xx, except an issuer whose keys cannot be had (503)', () => {
    for (const [code, status] of Object.entries(OIDC_ERROR_STATUS)) {
      if (code === 'OIDC_JWKS_UNAVAILABLE') assert.equal(status, 503);
      else assert.ok(status >= 400 && status < 500, code);
    }
  });
});

describe('JWKS source', () => {
  test('a failing fetch with no keys yet: OIDC_JWKS_UNAVAILABLE; with keys: the last keys stay in use', async () => {
    const { v, state } = verifier([rsa]);
    state.fail = true;
    await refused(v.verify(mint(rsa), at(NOW)), 'OIDC_JWKS_UNAVAILABLE');

    const cached = verifier([rsa]);
    await cached.v.verify(mint(rsa), at(NOW));
    cached.state.fail = true;
    await cached.v.verify(mint(rsa), at(NOW));
    await refused(cached.v.verify(mint(makeKey('new', 'RS256')), at(NOW)), 'OIDC_UNKNOWN_KEY');
  });

  test('unknown kids fetch again at most once per minRefreshSeconds', async () => {
    const issuer = fakeIssuer([rsa]);
    const limited = new OidcVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUrl: `${ISSUER}/jwks`,
      fetchOptions: { fetch: issuer.fetchImpl, minRefreshSeconds: 3600 },
    });
    await limited.verify(mint(rsa), at(NOW));
    for (let i = 0; i < 5; i++) await refused(limited.verify(mint(makeKey(`k${i}`, 'RS256')), at(NOW)), 'OIDC_UNKNOWN_KEY');
    assert.equal(issuer.state.fetches, 1);
  });

  test('a JWKS larger than the limit, or not a JWKS, is refused', async () => {
    const big = fakeIssuer([rsa]);
    big.state.body = JSON.stringify({ keys: [rsa.jwk], padding: 'x'.repeat(300_000) });
    const v = new OidcVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${ISSUER}/jwks`, fetchOptions: { fetch: big.fetchImpl } });
    const e = await refused(v.verify(mint(rsa), at(NOW)), 'OIDC_JWKS_UNAVAILABLE');
    assert.match(e.message, /larger than/);
    const junk = fakeIssuer([rsa]);
    junk.state.body = '<html>';
    const w = new OidcVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${ISSUER}/jwks`, fetchOptions: { fetch: junk.fetchImpl } });
    await refused(w.verify(mint(rsa), at(NOW)), 'OIDC_JWKS_UNAVAILABLE');
  });

  test('keys that cannot serve are skipped: encryption keys, short RSA keys, private members are not taken', async () => {
    const short = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const enc = { ...rsa.jwk, use: 'enc' };
    const weak = { ...(short.publicKey.export({ format: 'jwk' }) as object), kid: 'weak', alg: 'RS256' };
    const issuer = fakeIssuer([]);
    issuer.state.body = JSON.stringify({ keys: [enc, weak, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] });
    const v = new OidcVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: `${ISSUER}/jwks`, fetchOptions: { fetch: issuer.fetchImpl } });
    await refused(v.verify(mint(rsa), at(NOW)), 'OIDC_UNKNOWN_KEY');
    await refused(v.verify(signJws({ alg: 'RS256', kid: 'weak' }, claims(), short.privateKey), at(NOW)), 'OIDC_UNKNOWN_KEY');
  });

  test('JWKS URLs must be https, or http to a loopback address', () => {
    assert.throws(() => JwksSource.fromUrl('http://issuer.example.com/jwks'), OidcConfigError);
    assert.throws(() => JwksSource.fromUrl('file:///etc/passwd'), OidcConfigError);
    assert.throws(() => JwksSource.fromUrl('not a url'), OidcConfigError);
    JwksSource.fromUrl('http://127.0.0.1:8080/jwks');
    JwksSource.fromUrl('http://localhost/jwks');
    JwksSource.fromUrl('http://[::1]:5000/jwks');
    assert.throws(() => new OidcVerifier({ issuer: 'http://ci.example.com', audience: AUDIENCE }), OidcConfigError);
    assert.throws(() => JwksSource.fromFile('/nonexistent/jwks.json'), OidcConfigError);
  });

  test('an issuer is configured with jwksUrl or jwksFile, not both, and with an audience', () => {
    assert.throws(() => new OidcVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: 'https://a/jwks', jwksFile: '/tmp/x' }), OidcConfigError);
    assert.throws(() => new OidcVerifier({ issuer: ISSUER, audience: [] }), OidcConfigError);
  });
});

describe('bearerToken', () => {
  test('the token of a Bearer header, any case; null otherwise', async () => {
    const { bearerToken } = await import('../../src/auth/oidc.js');
    assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(bearerToken('bearer abc.def.ghi  '), 'abc.def.ghi');
    assert.equal(bearerToken('Basic dXNlcjpwYXNz'), null);
    assert.equal(bearerToken('Bearer a b'), null);
    assert.equal(bearerToken(undefined), null);
  });
});
