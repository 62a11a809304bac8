/**
 * The hook for identity tokens of CI systems (OIDC): a server given an IdentityVerifier lets the
 * signing call take a token it accepts instead of a registry token; the signer's rules are
 * checked against the identity it returns (its kind, subject and claims), and a token it
 * refuses is a 401 in the audit trail. Here the verifier is a stand-in that knows its tokens
 * by name.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { IdentityRefusedError, type CallerIdentity, type IdentityVerifier } from '../../src/auth/identity.js';
import { TokenAuthenticator } from '../../src/auth/token-auth.js';
import { createApp } from '../../src/http/app.js';
import { observe } from '../../src/http/observe.js';
import { createLogger } from '../../src/log.js';
import { tufKeyId } from '../../src/tuf/core/keys.js';
import { createRepository, postUpdate } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { repoGrant, tokenSigner } from '../support/tokens.js';
import { signFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const GUN = 'registry.example.com/oidc/app';
const tokens = tokenSigner({ issuer: 'issuer', service: 'signet.test' });
const admin = `Bearer ${tokens.mint({ sub: 'admin', access: [repoGrant(GUN, '*')] })}`;

const IDENTITIES: Record<string, CallerIdentity> = {
  'oidc.main': {
    kind: 'oidc',
    subject: 'repo:org/app:ref:refs/heads/main',
    claims: { iss: 'https://ci.example', repository: 'org/app', ref: 'refs/heads/main', workflow: 'release' },
  },
  'oidc.fork': {
    kind: 'oidc',
    subject: 'repo:someone/app:ref:refs/heads/main',
    claims: { iss: 'https://ci.example', repository: 'someone/app', ref: 'refs/heads/main', workflow: 'release' },
  },
};

const verifier: IdentityVerifier = {
  accepts: (token) => token.startsWith('oidc.'),
  verify: (token) => {
    const identity = IDENTITIES[token];
    return identity ? Promise.resolve(identity) : Promise.reject(new IdentityRefusedError('the token has expired'));
  },
};

let server: TestServer;
let app: http.Server;
let url: string;
let small: http.Server;
let smallUrl: string;

before(async () => {
  // The in-process server provides the context (and publishes the repository); the app under
  // test is the same context served with the verifier.
  server = await startTestServer();
  const ctx = server.context;
  const logger = createLogger('silent');
  const auth = new TokenAuthenticator({ realm: 'https://auth.example/token', service: 'signet.test', issuer: 'issuer', rootCertBundle: tokens.certPem });
  const handler = createApp(ctx, {
    auth,
    identityVerifier: verifier,
    cache: { currentMaxAge: 300, consistentMaxAge: 31536000 },
    logger,
    expiryWarningSeconds: 86400,
    limits: { maxBodyBytes: 1 << 20, maxPartBytes: 1 << 20, maxParts: 16 },
  });
  app = await new Promise<http.Server>((resolve) => {
    const s = http.createServer(observe(ctx.metrics, logger, handler));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  url = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  // The same context with a small limit per metadata file.
  const tight = createApp(ctx, {
    auth,
    identityVerifier: verifier,
    cache: { currentMaxAge: 300, consistentMaxAge: 31536000 },
    logger,
    expiryWarningSeconds: 86400,
    limits: { maxBodyBytes: 1 << 20, maxPartBytes: 4096, maxParts: 16 },
  });
  small = await new Promise<http.Server>((resolve) => {
    const s = http.createServer(observe(ctx.metrics, logger, tight));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  smallUrl = `http://127.0.0.1:${(small.address() as AddressInfo).port}`;

  const repo = await createRepository(server.url, GUN, { serverSnapshot: true });
  const created = await request(url)
    .post(`/api/v1/repositories/${GUN}/signers`)
    .set('Authorization', admin)
    .set('Content-Type', 'application/json')
    .send(JSON.stringify({ name: 'ci', rules: { identities: [{ kind: 'oidc', claims: { repository: 'org/app', ref: 'refs/heads/main' } }] } }));
  assert.equal(created.status, 201, created.text);
  const pub = (created.body as { publicKey: string }).publicKey;
  const key: TestKey = { keytype: 'ecdsa-x509', publicB64: pub, keyId: tufKeyId('ecdsa-x509', pub), privateKey: null };
  const targets = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/ci', keys: [key] }] }), [repo.targetsKey]);
  assert.equal((await postUpdate(server.url, GUN, { targets })).status, 200);
});

after(async () => {
  await new Promise((resolve) => app?.close(resolve));
  await new Promise((resolve) => small?.close(resolve));
  await server?.close();
});

const sign = (token: string, tag = 'v1', base = url) =>
  request(base)
    .post(`/api/v1/repositories/${GUN}/signers/ci/sign`)
    .set('Authorization', `Bearer ${token}`)
    .set('Content-Type', 'application/json')
    .send(JSON.stringify({ tag, digest: `sha256:${createHash('sha256').update(tag).digest('hex')}`, size: 7 }));

test('an identity token the verifier accepts signs when the rules admit its claims', async () => {
  const r = await sign('oidc.main');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(
    (r.body as { roles: { role: string }[] }).roles.map((x) => x.role),
    ['targets/ci'],
  );
});

test('claims the rules do not admit: 403; a token the verifier refuses: 401; a registry token without a matching identity rule: 403; all audited', async () => {
  const fork = await sign('oidc.fork', 'v2');
  assert.equal(fork.status, 403, fork.text);
  assert.match(fork.body.errors[0].detail, /claim repository = "someone\/app" does not match/);
  const expired = await sign('oidc.expired', 'v3');
  assert.equal(expired.status, 401, expired.text);
  assert.equal(expired.body.errors[0].code, 'UNAUTHORIZED');
  assert.match(expired.body.errors[0].detail, /expired/);
  // A registry token still goes through registry token authentication, then the rules.
  const registry = await sign(tokens.mint({ sub: 'pusher', access: [repoGrant(GUN, 'push')] }), 'v4');
  assert.equal(registry.status, 403, registry.text);
  assert.match(registry.body.errors[0].detail, /the caller is registry-token, not oidc/);

  const audit = await request(url)
    .get('/_signet/audit?signer=ci')
    .set('Authorization', `Bearer ${tokens.mint({ access: [{ type: 'registry', name: 'catalog', actions: ['*'] }] })}`);
  assert.equal(audit.status, 200, audit.text);
  const signs = (
    audit.body as { records: { action: string; subject: string; detail: { result: string; code?: string; identity: { kind: string } } }[] }
  ).records.filter((r) => r.action === 'signer-sign');
  assert.deepEqual(
    signs.map((r) => [r.detail.result, r.detail.code ?? '', r.detail.identity.kind]),
    [
      ['refused', 'SIGN_DENIED', 'registry-token'],
      ['refused', 'IDENTITY_REFUSED', 'anonymous'],
      ['refused', 'SIGN_DENIED', 'oidc'],
      ['signed', '', 'oidc'],
    ],
  );
  assert.equal(signs[3]!.subject, 'repo:org/app:ref:refs/heads/main');
});

test('a role the call would grow past the limit per metadata file is refused, nothing published', async () => {
  let refused: request.Response | null = null;
  for (let i = 0; i < 60 && !refused; i++) {
    const r = await sign('oidc.main', `grow-${i}`, smallUrl);
    if (r.status !== 200) refused = r;
  }
  assert.ok(refused, 'the limit was reached');
  assert.equal(refused.status, 400, refused.text);
  assert.equal(refused.body.errors[0].code, 'SIGN_REFUSED');
  assert.match(refused.body.errors[0].detail, /targets\/ci would be \d+ bytes with grow-\d+, over the server's limit of 4096 bytes/);
  const tag = /with (grow-\d+),/.exec(refused.body.errors[0].detail)![1]!;
  const current = await request(server.url).get(`/v2/${GUN}/_trust/tuf/targets/ci.json`);
  assert.equal((JSON.parse(current.text) as { signed: { targets: Record<string, unknown> } }).signed.targets[tag], undefined);
});
