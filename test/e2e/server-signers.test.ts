/**
 * Server-held signers end to end: Signet over HTTPS (its own process), a real registry, the
 * repository owner and a pipeline each their own DOCKER_CONFIG. The owner delegates to a
 * signer Signet holds, in one step (`signet trust signer add --server-held`) or with the real
 * `notary delegation add` and the certificate Signet printed; the pipeline, holding no key,
 * signs tags it pushed with `signet trust sign --remote-signer`; `notary list`, `docker trust
 * inspect` and `signet verify` see them signed by that signer. A disabled signer and a tag the
 * rules do not allow are refused, and nothing is published.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { canonicalKeyId } from '../../src/tuf/core/keys.js';
import { startDevTokenService, type RunningTokenService } from '../../src/auth/dev-token-service.js';
import { decideImage } from '../../src/gate/decide.js';
import { parsePolicy } from '../../src/gate/policy.js';
import { GateTrustCache } from '../../src/gate/trust-cache.js';
import { SIGNET_MAIN } from '../support/cli.js';
import { PASSPHRASES, run, SERVERS, startSignetUnderTest, Workbench, type Result } from '../support/interop.js';
import { trivyReport } from '../support/scan-reports.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['docker', 'docker-registry', 'notary'].filter((c) => !has(c));
const skip = missing.length > 0 && !process.env['CI'] ? `missing ${missing.join(', ')}` : false;

interface SignerJson {
  name: string;
  keyId: string;
  publicKey: string;
  certificate: string;
}

describe('server-held signers with the real notary CLI, docker trust and a registry', { skip, timeout: 600_000 }, () => {
  let bench: Workbench;
  const signet = (dir: string, ...args: string[]) => bench.signet(dir, ...args);
  const ok = (r: Result) => bench.ok(r);
  const api = () => request(bench.server.url);
  const ca = () => readFileSync(bench.server.ca);

  before(async () => {
    bench = await Workbench.start('server-signers', SERVERS[0]!.start);
  });
  after(() => bench?.stop());

  async function createSigner(gun: string, name: string, rules: object = {}): Promise<SignerJson> {
    const r = await api().post(`/api/v1/repositories/${gun}/signers`).ca(ca()).set('Content-Type', 'application/json').send(JSON.stringify({ name, rules }));
    assert.equal(r.status, 201, r.text);
    return r.body as SignerJson;
  }

  test('signer add --server-held, then a pipeline without keys signs with --remote-signer; notary, docker trust and signet verify agree', async () => {
    const name = 'pipeline/app';
    const repo = bench.image(name);
    await bench.registry.pushImage(name, 'v1');
    const owner = bench.user();
    ok(await signet(owner, 'trust', 'sign', `${repo}:v1`, '--signer', 'owner'));
    const ci = await createSigner(repo, 'ci', { tags: ['v*'] });

    const added = ok(await signet(owner, 'trust', 'signer', 'add', '--server-held', 'ci', repo));
    assert.match(added.stdout, new RegExp(`server-held signer "ci" \\(key ${ci.keyId}\\)`));

    const pushed = await bench.registry.pushImage(name, 'v2');
    const pipeline = bench.user();
    const signed = JSON.parse(ok(await signet(pipeline, 'trust', 'sign', `${repo}:v2`, '--remote-signer', 'ci', '--json')).stdout) as {
      digest: string;
      size: number;
      roles: { role: string }[];
      published: { role: string; version: number }[];
    };
    assert.equal(signed.digest, pushed.digest);
    assert.equal(signed.size, pushed.size);
    assert.deepEqual(
      signed.roles.map((r) => r.role),
      ['targets/ci', 'targets/releases'],
    );

    const reader = bench.user();
    const listed = ok(await bench.notary(reader, 'list', repo));
    assert.match(listed.stdout, new RegExp(`^v2\\s+${pushed.digest.slice(7)}\\s+${pushed.size}\\s+targets/`, 'm'));
    const inspected = JSON.parse(ok(await bench.docker(bench.user(), 'trust', 'inspect', `${repo}:v2`)).stdout) as {
      SignedTags: { SignedTag: string; Digest: string; Signers: string[] }[];
      Signers: { Name: string; Keys: { ID: string }[] }[];
    }[];
    const tag = inspected[0]!.SignedTags.find((t) => t.SignedTag === 'v2')!;
    assert.equal(tag.Digest, pushed.digest.slice(7));
    assert.deepEqual(tag.Signers, ['ci']);
    assert.ok(inspected[0]!.Signers.some((s) => s.Name === 'ci'));
    ok(await signet(bench.user(), 'verify', `${repo}:v2`, '--signer', 'ci'));

    // Refused: a tag outside the signer's patterns, and a disabled signer; nothing published.
    await bench.registry.pushImage(name, 'nightly');
    const nightly = await signet(pipeline, 'trust', 'sign', `${repo}:nightly`, '--remote-signer', 'ci');
    assert.equal(nightly.code, 1, nightly.out);
    assert.match(nightly.out, /SIGN_DENIED/);
    const off = await api().post(`/api/v1/repositories/${repo}/signers/ci/disable`).ca(ca());
    assert.equal(off.status, 200, off.text);
    await bench.registry.pushImage(name, 'v3');
    const disabled = await signet(pipeline, 'trust', 'sign', `${repo}:v3`, '--remote-signer', 'ci');
    assert.equal(disabled.code, 1, disabled.out);
    assert.match(disabled.out, /SIGNER_DISABLED/);
    const after = ok(await bench.notary(reader, 'list', repo));
    assert.doesNotMatch(after.stdout, /^(nightly|v3)\s/m);
    const audit = await api().get(`/_signet/audit?signer=ci`).ca(ca());
    const results = (audit.body as { records: { action: string; detail: { result?: string; code?: string } }[] }).records
      .filter((r) => r.action === 'signer-sign')
      .map((r) => r.detail.code ?? r.detail.result);
    assert.deepEqual(results, ['SIGNER_DISABLED', 'SIGN_DENIED', 'signed']);
  });

  test('the owner delegates with notary delegation add and the printed certificate', async () => {
    const name = 'pipeline/notary-owned';
    const repo = bench.image(name);
    await bench.registry.pushImage(name, 'v1');
    const owner = bench.user();
    ok(await signet(owner, 'trust', 'sign', `${repo}:v1`, '--signer', 'owner'));
    const builder = await createSigner(repo, 'builder');
    const cert = path.join(owner, 'builder.crt');
    writeFileSync(cert, builder.certificate);
    // The owner's targets key is under docker's repository passphrase.
    const notary = (...args: string[]) =>
      run('notary', ['-s', bench.server.url, '-d', path.join(owner, 'trust'), '--tlscacert', bench.server.ca, ...args], {
        ...bench.envOf(owner),
        NOTARY_TARGETS_PASSPHRASE: PASSPHRASES.DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE,
      });
    ok(await notary('delegation', 'add', repo, 'targets/builder', cert, '--all-paths'));
    ok(await notary('delegation', 'add', repo, 'targets/releases', cert, '--all-paths'));
    ok(await notary('publish', repo));
    const listed = ok(await notary('delegation', 'list', repo));
    // notary shows a certificate's key by its canonical ID (the key's, not the certificate's).
    assert.ok(listed.stdout.includes(canonicalKeyId('ecdsa-x509', builder.publicKey)), listed.stdout);

    const pushed = await bench.registry.pushImage(name, 'v2');
    ok(await signet(bench.user(), 'trust', 'sign', `${repo}:v2`, '--remote-signer', 'builder'));
    const reader = bench.user();
    const out = ok(await bench.notary(reader, 'list', repo, '-r', 'targets/builder'));
    assert.match(out.stdout, new RegExp(`^v2\\s+${pushed.digest.slice(7)}\\s+${pushed.size}\\s+targets/builder`, 'm'));
  });
});

describe(
  'a pipeline identity from the dev OIDC issuer signs after its scan; notary, docker trust, signet verify and the gate agree',
  { skip, timeout: 600_000 },
  () => {
    let bench: Workbench;
    let issuer: RunningTokenService;
    const signet = (dir: string, ...args: string[]) => bench.signet(dir, ...args);
    const ok = (r: Result) => bench.ok(r);
    const ca = () => readFileSync(bench.server.ca);

    /** The Trivy fixture for `repo@digest`, made an hour ago, written to `file`. */
    function report(file: string, repo: string, digest: string, withCritical: boolean): string {
      writeFileSync(file, JSON.stringify(trivyReport(repo, digest, new Date(Date.now() - 3_600_000), withCritical)));
      return file;
    }

    before(async () => {
      issuer = await startDevTokenService({ issuer: 'dev-ci', service: 'dev-ci', users: [], oidc: { audience: 'signet' } });
      bench = await Workbench.start('server-signers-oidc', async (work) => {
        const file = path.join(work, 'oidc-issuers.json');
        writeFileSync(file, JSON.stringify([{ issuer: issuer.oidc!.issuer, audience: 'signet' }]));
        return startSignetUnderTest({ SIGNET_OIDC_ISSUERS_FILE: file });
      });
    });
    after(async () => {
      await bench?.stop();
      await issuer?.close();
    });

    test('signed with the ID token and a passing report; a CRITICAL report and another repository’s token refused', async () => {
      const name = 'oidc/app';
      const repo = bench.image(name);
      await bench.registry.pushImage(name, 'v0');
      const owner = bench.user();
      ok(await signet(owner, 'trust', 'sign', `${repo}:v0`, '--signer', 'owner'));
      const created = await request(bench.server.url)
        .post(`/api/v1/repositories/${repo}/signers`)
        .ca(ca())
        .set('Content-Type', 'application/json')
        .send(
          JSON.stringify({
            name: 'ci',
            rules: {
              identities: [{ kind: 'oidc', claims: { repository: 'oidc/app', ref: 'refs/tags/*' } }],
              scan: { maxAge: 86400, maxSeverity: { CRITICAL: 0 } },
            },
          }),
        );
      assert.equal(created.status, 201, created.text);
      ok(await signet(owner, 'trust', 'signer', 'add', '--server-held', 'ci', repo));

      const pushed = await bench.registry.pushImage(name, 'v1');
      const pipeline = bench.user();
      const token = (claims: Record<string, string>) => issuer.oidc!.mint({ repository: 'oidc/app', ref: 'refs/tags/v1', ...claims }, { audience: 'signet' });
      const passing = report(path.join(pipeline, 'passing.json'), repo, pushed.digest, false);
      const failing = report(path.join(pipeline, 'failing.json'), repo, pushed.digest, true);
      const sign = (file: string, claims: Record<string, string> = {}) =>
        run(
          process.execPath,
          [SIGNET_MAIN, 'trust', 'sign', `${repo}:v1`, '--remote-signer', 'ci', '--id-token', 'env://CI_ID_TOKEN', '--scan-report', file, '--json'],
          {
            ...bench.envOf(pipeline),
            CI_ID_TOKEN: token(claims),
          },
        );

      const critical = await sign(failing);
      assert.equal(critical.code, 1, critical.out);
      assert.match(critical.out, /SCAN_REFUSED.*CRITICAL/s);
      const foreign = await sign(passing, { repository: 'someone/else' });
      assert.equal(foreign.code, 1, foreign.out);
      assert.match(foreign.out, /SIGN_DENIED/);
      const reader = bench.user();
      assert.doesNotMatch(ok(await bench.notary(reader, 'list', repo)).stdout, /^v1\s/m, 'nothing published');

      const signed = ok(await sign(passing));
      assert.equal((JSON.parse(signed.stdout) as { digest: string }).digest, pushed.digest);
      assert.match(ok(await bench.notary(reader, 'list', repo)).stdout, new RegExp(`^v1\\s+${pushed.digest.slice(7)}\\s+${pushed.size}\\s+targets/`, 'm'));
      const inspected = JSON.parse(ok(await bench.docker(bench.user(), 'trust', 'inspect', `${repo}:v1`)).stdout) as {
        SignedTags: { SignedTag: string; Signers: string[] }[];
      }[];
      assert.deepEqual(inspected[0]!.SignedTags.find((t) => t.SignedTag === 'v1')!.Signers, ['ci']);
      ok(await signet(bench.user(), 'verify', `${repo}:v1`, '--signer', 'ci'));

      // The gate, with the repository's root pinned and the scan rule.
      const work = bench.user();
      const root = JSON.parse((await request(bench.server.url).get(`/v2/${repo}/_trust/tuf/1.root.json`).ca(ca())).text) as {
        signed: { keys: Record<string, { keyval: { public: string } }>; roles: { root: { keyids: string[] } } };
      };
      writeFileSync(path.join(work, 'root.pem'), Buffer.from(root.signed.keys[root.signed.roles.root.keyids[0]!]!.keyval.public, 'base64'));
      const policy = parsePolicy(
        `version: 1
trust:
  signet: {notary: ${bench.server.url}, rootKeys: [root.pem], ca: ${bench.server.ca}}
rules:
  - images: ["**"]
    trust: signet
    signers: [ci]
    scan: {maxAge: 7d}
`,
        path.join(work, 'policy.yaml'),
      );
      const trust = new GateTrustCache(policy.refreshMs);
      trust.configure(policy.trust.values(), policy.refreshMs);
      try {
        const allowed = await decideImage(`${repo}:v1`, policy, trust);
        assert.equal(allowed.allowed, true, allowed.reasons.join('; '));
        assert.equal(allowed.digest, pushed.digest);
        const unscanned = await decideImage(`${repo}:v0`, policy, trust);
        assert.equal(unscanned.allowed, false, 'v0 has no signature by ci');
      } finally {
        trust.close();
      }
      const audit = await request(bench.server.url).get('/_signet/audit?signer=ci').ca(ca());
      const results = (audit.body as { records: { action: string; detail: { result?: string; code?: string; identity?: { kind: string } } }[] }).records
        .filter((r) => r.action === 'signer-sign')
        .map((r) => [r.detail.code ?? r.detail.result, r.detail.identity?.kind]);
      assert.deepEqual(results, [
        ['signed', 'oidc'],
        ['SIGN_DENIED', 'oidc'],
        ['SCAN_BLOCKED', 'oidc'],
      ]);
    });
  },
);
