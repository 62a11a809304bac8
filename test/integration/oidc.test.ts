/**
 * OIDC identities end to end with the real development token service in OIDC mode, over HTTP
 * on loopback (as GitHub Actions' and GitLab's issuers would be reached): ID tokens minted by
 * its POST route and verified with its JWKS by URL, through discovery and from a file; key
 * rotation picked up through an unknown kid; expired, foreign-audience and foreign-issuer
 * tokens refused; replay refused across two stores on one database (Postgres with
 * TEST_DATABASE_URL, else the embedded store), also under concurrent use; the command line's
 * OIDC mode.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { OidcError, oidcIssuersFromConfig, OidcVerifier, type ReplayGuard } from '../../src/auth/oidc.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { migrate } from '../../src/storage/migrate.js';
import { OidcReplayStore } from '../../src/storage/oidc-replay-store.js';
import { Stores } from '../../src/storage/stores.js';
import { SIGNET_MAIN } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const AUDIENCE = 'signet';
const GITHUB_CLAIMS = {
  sub: 'repo:octo-org/app:ref:refs/heads/main',
  repository: 'octo-org/app',
  repository_owner: 'octo-org',
  ref: 'refs/heads/main',
  workflow: 'release',
  job_workflow_ref: 'octo-org/app/.github/workflows/release.yml@refs/heads/main',
};

let tmp: string;
let service: RunningTokenService;

let testDb: TestDatabase;
let first: Database;
let second: Database;

before(async () => {
  // The database first: opening the embedded store keeps the event loop busy for a while.
  testDb = await createTestDatabase();
  first = await openDatabase({ url: testDb.url, dataDir: testDb.dataDir, connectRetrySeconds: 0 });
  await migrate(first);
  // Two processes on Postgres are two pools; the embedded store allows one opener, so two stores share it.
  second = testDb.url ? await openDatabase({ url: testDb.url, dataDir: testDb.dataDir, connectRetrySeconds: 0 }) : first;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'signet-oidc-'));
  service = await startDevTokenService({ issuer: 'registry-tokens', service: AUDIENCE, users: [], oidc: { jwksFile: path.join(tmp, 'jwks.json') } });
});
after(async () => {
  await service?.close();
  if (second !== first) await second?.close();
  await first?.close();
  await testDb?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

async function mintOverHttp(body: object): Promise<string> {
  const res = await fetch(`${service.url}/oidc/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const answer = (await res.json()) as { token: string; value: string };
  assert.equal(answer.value, answer.token);
  return answer.token;
}

async function rotate(keepOld = true): Promise<string> {
  const res = await fetch(`${service.url}/oidc/rotate`, { method: 'POST', body: JSON.stringify({ keepOld }) });
  return ((await res.json()) as { kid: string }).kid;
}

async function refused(work: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (e: unknown) => {
    assert.ok(e instanceof OidcError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

describe('dev token service, OIDC mode', () => {
  test('serves discovery and the JWKS; its issuer is its own URL', async () => {
    const oidc = service.oidc!;
    assert.equal(oidc.issuer, service.url);
    const config = (await (await fetch(`${service.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(config['issuer'], service.url);
    assert.equal(config['jwks_uri'], `${service.url}/.well-known/jwks`);
    assert.deepEqual(config['id_token_signing_alg_values_supported'], ['RS256']);
    const jwks = (await (await fetch(oidc.jwksUrl)).json()) as { keys: { kid: string; kty: string; d?: string }[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.kty, 'RSA');
    assert.equal(jwks.keys[0]!.d, undefined, 'no private member is published');
    assert.deepEqual(JSON.parse(readFileSync(path.join(tmp, 'jwks.json'), 'utf8')), jwks);
  });

  test('the registry token route still answers, and unknown routes are 404', async () => {
    assert.equal((await fetch(`${service.url}/auth/token?service=${AUDIENCE}`)).status, 200);
    assert.equal((await fetch(`${service.url}/oidc/nothing`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`${service.url}/oidc/token`)).status, 404, 'minting is POST only');
  });
});

describe('dev token service, OIDC mode, minting only for loopback callers', () => {
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;

  test(
    'a caller on another address gets 403 from the POST routes, and the JWKS as anyone',
    { skip: external ? false : 'no non-loopback IPv4 address here' },
    async () => {
      const open = await startDevTokenService({ issuer: 'x', service: AUDIENCE, users: [], host: '0.0.0.0', oidc: { issuer: 'https://ci.example.com' } });
      try {
        const base = open.url.replace('0.0.0.0', external!);
        const mint = await fetch(`${base}/oidc/token`, { method: 'POST', body: '{}' });
        assert.equal(mint.status, 403);
        assert.equal((await fetch(`${base}/oidc/rotate`, { method: 'POST', body: '{}' })).status, 403);
        assert.equal((await fetch(`${base}/.well-known/jwks`)).status, 200);
        assert.equal((await fetch(`${open.url.replace('0.0.0.0', '127.0.0.1')}/oidc/token`, { method: 'POST', body: '{}' })).status, 200);
      } finally {
        await open.close();
      }
    },
  );

  test('a mint request that is not JSON, or too large, is 400', async () => {
    assert.equal((await fetch(`${service.url}/oidc/token`, { method: 'POST', body: '{nope' })).status, 400);
    const huge = await fetch(`${service.url}/oidc/token`, { method: 'POST', body: JSON.stringify({ claims: { pad: 'x'.repeat(100_000) } }) });
    assert.equal(huge.status, 400);
  });
});

describe('OidcVerifier against the dev issuer over HTTP', () => {
  test('JWKS by URL: a minted token is accepted with its claims and conditions', async () => {
    const v = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: service.oidc!.jwksUrl });
    const identity = await v.verify(await mintOverHttp({ claims: GITHUB_CLAIMS }), {
      conditions: [
        { claim: 'repository', equals: 'octo-org/app' },
        { claim: 'ref', glob: 'refs/heads/*' },
        { claim: 'job_workflow_ref', glob: 'octo-org/app/.github/workflows/*@refs/heads/**' },
      ],
    });
    assert.equal(identity.subject, GITHUB_CLAIMS.sub);
    assert.equal(identity.claims['workflow'], 'release');
    await refused(
      v.verify(await mintOverHttp({ claims: { ...GITHUB_CLAIMS, repository: 'octo-org/other' } }), {
        conditions: [{ claim: 'repository', equals: 'octo-org/app' }],
      }),
      'OIDC_CLAIMS_MISMATCH',
    );
  });

  test('JWKS through discovery (no URL configured)', async () => {
    const v = new OidcVerifier({ issuer: service.url, audience: AUDIENCE });
    await v.verify(await mintOverHttp({ claims: GITHUB_CLAIMS }));
  });

  test('JWKS from a file, read again when a token names a key the file did not have', async () => {
    const v = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksFile: path.join(tmp, 'jwks.json'), fetchOptions: { minRefreshSeconds: 0 } });
    await v.verify(await mintOverHttp({ claims: GITHUB_CLAIMS }));
    await rotate();
    await v.verify(await mintOverHttp({ claims: GITHUB_CLAIMS }));
  });

  test('key rotation: an unknown kid makes the verifier fetch the JWKS again; a retired key is refused', async () => {
    const v = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: service.oidc!.jwksUrl, fetchOptions: { minRefreshSeconds: 0 } });
    const before = await mintOverHttp({ claims: GITHUB_CLAIMS });
    await v.verify(before);
    const kid = await rotate(false);
    const after = await mintOverHttp({ claims: GITHUB_CLAIMS });
    assert.equal(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid, kid);
    await v.verify(after);
    // The old key left the JWKS: a token it signed is now of an unknown key.
    const stale = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: service.oidc!.jwksUrl });
    await refused(stale.verify(before), 'OIDC_UNKNOWN_KEY');
  });

  test('expired, foreign audience, foreign issuer', async () => {
    const v = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: service.oidc!.jwksUrl, fetchOptions: { minRefreshSeconds: 0 } });
    const now = Math.floor(Date.now() / 1000);
    await refused(v.verify(await mintOverHttp({ claims: { ...GITHUB_CLAIMS, iat: now - 900, nbf: now - 900, exp: now - 600 } })), 'OIDC_EXPIRED');
    await refused(v.verify(await mintOverHttp({ claims: GITHUB_CLAIMS, audience: 'sigstore' })), 'OIDC_WRONG_AUDIENCE');
    await refused(v.verify(await mintOverHttp({ claims: { ...GITHUB_CLAIMS, iss: 'https://gitlab.example.com' } })), 'OIDC_WRONG_ISSUER');
  });

  test('an issuer that cannot be reached is OIDC_JWKS_UNAVAILABLE, within the timeout', async () => {
    const stopped = await startDevTokenService({ issuer: 'x', service: AUDIENCE, users: [], oidc: {} });
    const token = stopped.oidc!.mint(GITHUB_CLAIMS);
    const issuer = stopped.oidc!.issuer;
    await stopped.close();
    const v = new OidcVerifier({ issuer, audience: AUDIENCE, fetchOptions: { timeoutMs: 2000 } });
    await refused(v.verify(token), 'OIDC_JWKS_UNAVAILABLE');
  });
});

describe('several issuers, and issuers that misbehave', () => {
  test('tokens go to the verifier of their issuer (a GitHub-like and a GitLab-like issuer)', async () => {
    const gitlab = await startDevTokenService({ issuer: 'x', service: AUDIENCE, users: [], oidc: { algorithm: 'ES256' } });
    try {
      const issuers = oidcIssuersFromConfig([
        { issuer: service.url, audience: AUDIENCE, conditions: [{ claim: 'repository_owner', equals: 'octo-org' }] },
        { issuer: gitlab.url, audience: [AUDIENCE, 'https://gitlab.example.com'], jwksUrl: gitlab.oidc!.jwksUrl },
      ]);
      const fromGithub = await issuers.verify(await mintOverHttp({ claims: GITHUB_CLAIMS }));
      assert.equal(fromGithub.issuer, service.url);
      const glToken = gitlab.oidc!.mint({ sub: 'project_path:group/app:ref_type:branch:ref:main', project_path: 'group/app', ref: 'main', ref_type: 'branch' });
      const fromGitlab = await issuers.verify(glToken, { conditions: [{ claim: 'project_path', glob: 'group/*' }] });
      assert.equal(fromGitlab.issuer, gitlab.url);
      await refused(issuers.verify(glToken, { issuer: service.url }), 'OIDC_WRONG_ISSUER');
      await refused(issuers.verify(gitlab.oidc!.mint({ iss: 'https://token.actions.githubusercontent.com' })), 'OIDC_WRONG_ISSUER');
      // The issuer's own conditions hold for every token of it.
      await refused(issuers.verify(await mintOverHttp({ claims: { ...GITHUB_CLAIMS, repository_owner: 'evil' } })), 'OIDC_CLAIMS_MISMATCH');
    } finally {
      await gitlab.close();
    }
  });

  test('a JWKS endpoint that never answers is given up after the timeout; one that sends too much is cut off', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const bad = http.createServer((req, res) => {
      if (req.url === '/slow') return; // never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      // No content-length: the limit must hold while reading.
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 2 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('{"keys": []}');
      };
      pump();
    });
    bad.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(bad.address() as AddressInfo).port}`;
    try {
      const token = await mintOverHttp({ claims: GITHUB_CLAIMS });
      const started = Date.now();
      const slow = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: `${base}/slow`, fetchOptions: { timeoutMs: 300 } });
      await assert.rejects(slow.verify(token), (e: unknown) => e instanceof OidcError && e.code === 'OIDC_JWKS_UNAVAILABLE' && /timed out/.test(e.message));
      assert.ok(Date.now() - started < 5000);
      const big = new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: `${base}/big` });
      await assert.rejects(big.verify(token), (e: unknown) => e instanceof OidcError && e.code === 'OIDC_JWKS_UNAVAILABLE' && /larger than/.test(e.message));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => bad.close(() => r()));
    }
  });

  test('the issuer configuration is checked: a list of valid issuers', () => {
    assert.throws(() => oidcIssuersFromConfig({ issuer: service.url }), /must be a list/);
    assert.throws(() => oidcIssuersFromConfig([{ issuer: service.url }]), /OIDC issuer #1: audience/);
    assert.throws(() => oidcIssuersFromConfig([{ issuer: service.url, audience: AUDIENCE, conditions: [{ claim: 'ref' }] }]), /exactly one of equals or glob/);
    assert.throws(
      () =>
        oidcIssuersFromConfig([
          { issuer: service.url, audience: AUDIENCE },
          { issuer: service.url, audience: 'x' },
        ]),
      /configured twice/,
    );
  });
});

describe('replay across two stores on one database', () => {
  const verifierWith = (replay: ReplayGuard) =>
    new OidcVerifier({ issuer: service.url, audience: AUDIENCE, jwksUrl: service.oidc!.jwksUrl, replay, fetchOptions: { minRefreshSeconds: 0 } });

  test('a token accepted through one store is a replay through the other', async () => {
    const a = verifierWith(new OidcReplayStore(first.db));
    const b = verifierWith(new OidcReplayStore(second.db));
    const token = await mintOverHttp({ claims: GITHUB_CLAIMS });
    await a.verify(token);
    await refused(b.verify(token), 'OIDC_REPLAYED');
    await refused(a.verify(token), 'OIDC_REPLAYED');
    await b.verify(await mintOverHttp({ claims: GITHUB_CLAIMS }));
  });

  test('concurrent use of one jti through both stores: exactly one acceptance', async () => {
    const stores = [new Stores(first.db).oidcReplay, new Stores(second.db).oidcReplay];
    const verifiers = stores.map(verifierWith);
    const token = await mintOverHttp({ claims: GITHUB_CLAIMS });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => verifiers[i % 2]!.verify(token)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as OidcError).code, 'OIDC_REPLAYED');
  });

  test('the store: once per (issuer, jti) until expiry, then free again; pruned after expiry', async () => {
    const store = new OidcReplayStore(first.db);
    const now = new Date('2030-01-01T00:00:00Z');
    const later = new Date('2030-01-01T00:10:00Z');
    const until = new Date('2030-01-01T00:05:00Z');
    assert.equal(await store.claimOnce('https://issuer.example.com', 'j1', until, now), true);
    assert.equal(await store.claimOnce('https://issuer.example.com', 'j1', until, now), false);
    assert.equal(await store.claimOnce('https://other.example.com', 'j1', until, now), true, 'another issuer, another token');
    assert.equal(await new OidcReplayStore(second.db).claimOnce('https://issuer.example.com', 'j1', until, now), false);
    assert.equal(await store.claimOnce('https://issuer.example.com', 'j1', new Date('2030-01-01T00:15:00Z'), later), true, 'an expired record is taken over');
    assert.equal(await store.claimOnce('https://issuer.example.com', 'j1', until, later), false);
    await store.prune(new Date('2030-01-01T00:01:00Z'));
    assert.equal(await store.count(), 2, 'records not yet expired stay');
    assert.equal(await store.prune(new Date('2030-01-01T00:20:00Z')), 2);
    assert.equal(await store.count(), 0);
  });
});

describe('signet dev-token-service --oidc', () => {
  test('prints its issuer and mints tokens the verifier accepts; writes --jwks-out', async () => {
    const jwksOut = path.join(tmp, 'cli-jwks.json');
    const child = spawn(
      process.execPath,
      [SIGNET_MAIN, 'dev-token-service', '--port', '0', '--oidc', '--oidc-alg', 'ES256', '--oidc-audience', 'ci-signer', '--jwks-out', jwksOut],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const issuer = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /dev OIDC issuer: (\S+),/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const res = await fetch(`${issuer}/oidc/token`, { method: 'POST', body: JSON.stringify({ claims: GITHUB_CLAIMS }) });
      const { token } = (await res.json()) as { token: string };
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'ES256');
      const identity = await new OidcVerifier({ issuer, audience: 'ci-signer', jwksFile: jwksOut }).verify(token);
      assert.equal(identity.claims['repository'], 'octo-org/app');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
