/**
 * A pipeline signs with a server-held signer using an OIDC ID token from its CI system (the dev
 * token service's OIDC issuer over HTTP) and a scan report, through the real HTTP API: a passing
 * Trivy report signs, and its summary is signed into the target's `custom.signet.scan` and kept in
 * the audit trail; a report with a CRITICAL finding, one for another digest, an old one, a token
 * for another repository, an expired or replayed token, and a disabled signer are each refused
 * with a 4xx, publish nothing, and are audited. The gate's `scan: {maxAge}` rule admits the signed
 * tag read back from this server.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { decideImage } from '../../src/gate/decide.js';
import { parsePolicy } from '../../src/gate/policy.js';
import { GateTrustCache } from '../../src/gate/trust-cache.js';
import { runSignet } from '../support/cli.js';
import { trivyReport } from '../support/scan-reports.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { catalogGrant, repoGrant, tokenSigner, type TokenSigner } from '../support/tokens.js';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, signFile, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const SERVICE = 'signet.oidc-scan.test';
const ISSUER = 'signet-oidc-scan-test-issuer';
const AUDIENCE = 'signet';
const GUN = 'registry.example.com/team/app';
const DAY_MS = 86_400_000;
const hexOf = (text: string) => createHash('sha256').update(text).digest('hex');
/** The Trivy fixture for `${GUN}@sha256:<digestHex>`. */
const trivyFor = (digestHex: string, createdAt: Date, withCritical: boolean) => trivyReport(GUN, `sha256:${digestHex}`, createdAt, withCritical);

describe('server-held signers with OIDC identities and sign-after-scan', { timeout: 120_000 }, () => {
  let work: string;
  let tokens: TokenSigner;
  let oidc: RunningTokenService;
  let server: TestServer;
  let targetsKey: TestKey;
  let rootKey: TestKey;
  let certificate: string;
  const admin = () => `Bearer ${tokens.mint({ sub: 'admin', access: [repoGrant(GUN, '*'), catalogGrant('*')] })}`;
  const idToken = (claims: Record<string, unknown> = {}, lifetimeSeconds?: number) =>
    oidc.oidc!.mint(
      { repository: 'team/app', ref: 'refs/heads/main', workflow: 'release', ...claims },
      { audience: AUDIENCE, ...(lifetimeSeconds !== undefined ? { lifetimeSeconds } : {}) },
    );
  const sign = (token: string, body: unknown, signer = 'ci') =>
    request(server.url)
      .post(`/api/v1/repositories/${GUN}/signers/${signer}/sign`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify(body));
  const ciTargets = async () => {
    const r = await request(server.url).get(`/v2/${GUN}/_trust/tuf/targets/ci.json`).set('Authorization', admin());
    return r.status === 200 ? (JSON.parse(r.text) as { signed: { version: number; targets: Record<string, { custom?: unknown }> } }) : null;
  };
  const audit = async () => {
    const r = await request(server.url).get('/_signet/audit?signer=ci&limit=1000').set('Authorization', admin());
    assert.equal(r.status, 200, r.text);
    return (r.body as { records: { action: string; detail: Record<string, unknown> }[] }).records;
  };

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'signet-oidc-scan-'));
    tokens = tokenSigner({ issuer: ISSUER, service: SERVICE });
    // The registry's token service (for the gate, which logs in as a pull-only user) is also the CI system's OIDC issuer.
    oidc = await startDevTokenService({
      issuer: ISSUER,
      service: SERVICE,
      users: [{ name: 'gate', password: 'gate-secret', repositories: [''], actions: ['pull'] }],
      oidc: { audience: AUDIENCE },
    });
    writeFileSync(path.join(work, 'token-ca.pem'), `${tokens.certPem}\n${oidc.certificatePem}`);
    writeFileSync(path.join(work, 'gate-password'), 'gate-secret\n');
    writeFileSync(path.join(work, 'oidc.json'), JSON.stringify([{ issuer: oidc.oidc!.issuer, audience: AUDIENCE, jwksUrl: oidc.oidc!.jwksUrl }]));
    server = await startTestServer({
      SIGNET_AUTH: 'token',
      SIGNET_AUTH_REALM: oidc.realm,
      SIGNET_AUTH_SERVICE: SERVICE,
      SIGNET_AUTH_ISSUER: ISSUER,
      SIGNET_AUTH_ROOT_CERT_BUNDLE: path.join(work, 'token-ca.pem'),
      SIGNET_OIDC_ISSUERS_FILE: path.join(work, 'oidc.json'),
    });
    const key = async (role: string) =>
      serverKey(JSON.parse((await request(server.url).get(`/v2/${GUN}/_trust/tuf/${role}.key`).set('Authorization', admin())).text) as never);
    rootKey = certKey({ commonName: GUN });
    targetsKey = ecdsaKey();
    const spec = { root: [rootKey], targets: [targetsKey], snapshot: [await key('snapshot')], timestamp: [await key('timestamp')] };
    writeFileSync(path.join(work, 'root.pem'), Buffer.from(rootKey.publicB64, 'base64'));

    const created = await request(server.url)
      .post(`/api/v1/repositories/${GUN}/signers`)
      .set('Authorization', admin())
      .set('Content-Type', 'application/json')
      .send(
        JSON.stringify({
          name: 'ci',
          rules: {
            identities: [{ kind: 'oidc', claims: { repository: 'team/app', ref: ['refs/heads/main', 'refs/tags/*'] } }],
            scan: { maxAge: DAY_MS / 1000, maxSeverity: { CRITICAL: 0, HIGH: 5 } },
          },
        }),
      );
    assert.equal(created.status, 201, created.text);
    const signer = created.body as { publicKey: string; certificate: string };
    certificate = signer.certificate;
    const ciKey = { keytype: 'ecdsa-x509', publicB64: signer.publicKey, privateKey: null, keyId: '' } as unknown as TestKey;
    (ciKey as { keyId: string }).keyId = createHash('sha256')
      .update(JSON.stringify({ keytype: 'ecdsa-x509', keyval: { private: null, public: signer.publicKey } }))
      .digest('hex');
    const targets = targetsDoc({
      delegations: [
        { name: 'targets/ci', keys: [ciKey] },
        { name: 'targets/releases', keys: [ciKey] },
      ],
    });
    const { body, contentType } = multipartBody({ root: signFile(rootDoc(spec), [rootKey]), targets: signFile(targets, [targetsKey]) });
    const res = await request(server.url).post(`/v2/${GUN}/_trust/tuf/`).set('Authorization', admin()).set('Content-Type', contentType).send(body);
    assert.equal(res.status, 200, res.text);
  });
  after(async () => {
    await server?.close();
    await oidc?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('an ID token and a passing report sign; the scan summary is signed into the target and audited; the gate’s scan rule admits it', async () => {
    assert.match(certificate, /BEGIN CERTIFICATE/);
    const digest = hexOf('release image');
    const r = await sign(idToken(), { tag: 'v1', digest: `sha256:${digest}`, size: 1234, scan: trivyFor(digest, new Date(Date.now() - 3600_000), false) });
    assert.equal(r.status, 200, r.text);
    const answer = r.body as { scan: { scanner: string; digest: string; counts: Record<string, number> } };
    assert.equal(answer.scan.digest, `sha256:${digest}`);
    assert.equal(answer.scan.counts['CRITICAL'], 0);
    const ci = await ciTargets();
    const custom = ci!.signed.targets['v1']!.custom as { signet: { signer: string; scan: { scanner: string } } };
    assert.equal(custom.signet.signer, 'ci');
    assert.match(custom.signet.scan.scanner, /trivy/i);
    const signed = (await audit()).find((a) => a.detail['result'] === 'signed');
    assert.ok(signed, 'the signing call is audited');
    assert.equal((signed.detail['identity'] as { kind: string }).kind, 'oidc');
    assert.equal((signed.detail['identity'] as { claims: Record<string, string> }).claims['repository'], 'team/app');
    assert.ok(signed.detail['scan'], 'with the scan summary');
    assert.doesNotMatch(JSON.stringify(await audit()), /eyJ/, 'no token in the audit trail');

    const policy = parsePolicy(
      `version: 1
trust:
  prod: {notary: ${server.url}, rootKeys: [root.pem], auth: {username: gate, passwordFile: gate-password}}
rules:
  - images: ["registry.example.com/**"]
    trust: prod
    signers: [ci]
    scan: {maxAge: 7d}
`,
      path.join(work, 'policy.yaml'),
    );
    const trust = new GateTrustCache(policy.refreshMs);
    trust.configure(policy.trust.values(), policy.refreshMs);
    try {
      const d = await decideImage(`${GUN}:v1`, policy, trust);
      assert.equal(d.allowed, true, d.reasons.join('; '));
      assert.equal(d.evidence[0]!.scan?.counts['CRITICAL'], 0);
    } finally {
      trust.close();
    }
  });

  test('signet trust sign --remote-signer with --id-token env://NAME and --scan-report FILE', async () => {
    const digest = hexOf('cli image');
    writeFileSync(path.join(work, 'report.json'), JSON.stringify(trivyFor(digest, new Date(Date.now() - 600_000), false), null, 2));
    const home = mkdtempSync(path.join(work, 'home-'));
    const args = (tag: string) => [
      'trust',
      'sign',
      `${GUN}:${tag}`,
      '--remote-signer',
      'ci',
      '--digest',
      `sha256:${digest}`,
      '--size',
      '321',
      '--id-token',
      'env://CI_ID_TOKEN',
      '--scan-report',
      path.join(work, 'report.json'),
      '--server',
      server.url,
    ];
    const env = { DOCKER_CONFIG: home, CI: 'true', CI_ID_TOKEN: idToken() };
    const r = await runSignet([...args('v3'), '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const scan = (JSON.parse(r.stdout) as { scan: { digest: string; reportDigest: string } }).scan;
    assert.equal(scan.digest, `sha256:${digest}`);
    assert.equal(
      scan.reportDigest,
      `sha256:${createHash('sha256')
        .update(readFileSync(path.join(work, 'report.json')))
        .digest('hex')}`,
      'the digest of the file as written',
    );
    assert.ok((await ciTargets())!.signed.targets['v3']);
    const again = await runSignet(args('v4'), env);
    assert.equal(again.code, 1, 'the same ID token again is a replay');
    assert.match(again.stderr, /OIDC_REPLAYED/);
    assert.doesNotMatch(again.stderr, /eyJ/, 'the token is not echoed');
    const unset = await runSignet(args('v5'), { DOCKER_CONFIG: home, CI: 'true' });
    assert.equal(unset.code, 2, unset.stderr);
    assert.match(unset.stderr, /ID token env:\/\/CI_ID_TOKEN: the variable is not set/);
  });

  test('refused, nothing published, each audited: CRITICAL, another digest, an old report, no report, another repository, expired, replayed, disabled', async () => {
    const digest = hexOf('candidate image');
    const fresh = new Date(Date.now() - 3600_000);
    const body = (scan: unknown, tag = 'v2') => ({ tag, digest: `sha256:${digest}`, size: 99, ...(scan !== undefined ? { scan } : {}) });
    const before = (await ciTargets())!.signed.version;
    const refusedBefore = (await audit()).filter((a) => a.detail['result'] === 'refused').length;
    const replayed = idToken();
    assert.equal((await sign(replayed, body(trivyFor(digest, fresh, true)))).status, 422, 'first use, refused on its scan');

    const cases: [string, () => Promise<request.Response>, number, string, RegExp][] = [
      ['CRITICAL', () => sign(idToken(), body(trivyFor(digest, fresh, true))), 422, 'SCAN_REFUSED', /CRITICAL/],
      ['another digest', () => sign(idToken(), body(trivyFor(hexOf('other'), fresh, false))), 422, 'SCAN_REFUSED', /the report is for/],
      ['old report', () => sign(idToken(), body(trivyFor(digest, new Date(Date.now() - 3 * DAY_MS), false))), 422, 'SCAN_REFUSED', /old/],
      ['no report', () => sign(idToken(), body(undefined)), 400, 'SIGN_REFUSED', /scan report/],
      ['not a report', () => sign(idToken(), body({ hello: 'world' })), 400, 'SCAN_INVALID', /./],
      ['another repository', () => sign(idToken({ repository: 'evil/app' }), body(trivyFor(digest, fresh, false))), 403, 'SIGN_DENIED', /repository/],
      ['expired', () => sign(idToken({}, -120), body(trivyFor(digest, fresh, false))), 401, 'UNAUTHORIZED', /OIDC_EXPIRED/],
      ['replayed', () => sign(replayed, body(trivyFor(digest, fresh, false))), 401, 'UNAUTHORIZED', /OIDC_REPLAYED/],
    ];
    for (const [what, call, status, code, detail] of cases) {
      const r = await call();
      assert.equal(r.status, status, `${what}: ${r.text}`);
      const error = (r.body as { errors: { code: string; detail?: unknown }[] }).errors[0]!;
      assert.equal(error.code, code, what);
      assert.match(JSON.stringify(error.detail ?? ''), detail, what);
    }
    const disable = await request(server.url).post(`/api/v1/repositories/${GUN}/signers/ci/disable`).set('Authorization', admin());
    assert.ok(disable.status === 200 || disable.status === 204, disable.text);
    const disabled = await sign(idToken(), body(trivyFor(digest, fresh, false)));
    assert.equal(disabled.status, 409, disabled.text);

    assert.equal((await ciTargets())!.signed.version, before, 'nothing was published');
    assert.equal((await ciTargets())!.signed.targets['v2'], undefined);
    const refused = (await audit()).filter((a) => a.detail['result'] === 'refused');
    // Every refusal that got past authentication is audited (expired and replayed tokens are refused before the signer is looked at).
    assert.ok(refused.length - refusedBefore >= 7, `audited refusals: ${refused.length - refusedBefore}`);
    assert.ok(refused.some((a) => a.detail['code'] === 'SCAN_BLOCKED' && a.detail['scan']));
  });
});
