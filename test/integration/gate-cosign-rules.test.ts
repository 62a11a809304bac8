/**
 * Rules that mix Notary and Cosign, for a cluster moving from one to the other: trust data
 * published with the real `signet trust` commands into a real Signet server, Cosign signatures
 * in a real registry, and the gate's HTTP server. `allOf` needs a Notary signer and a Cosign key
 * (missing either denies), `anyOf` admits with either. Also the policy errors a Cosign source or
 * a mixed rule can have, each naming its field and line, at load.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signImageDigest } from '../../src/cosign/index.js';
import { GateError } from '../../src/gate/errors.js';
import { startGateServer, type RunningGate } from '../../src/gate/gate-server.js';
import { loadPolicy, parsePolicy } from '../../src/gate/policy.js';
import { RegistryClient, staticCredentials } from '../../src/registry/index.js';
import { runSignet } from '../support/cli.js';
import { admissionReview, captureLog, gateRequest, objectOf, patchOf, writePolicy } from '../support/gate.js';
import { startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';
import { startTestServer, type TestServer } from '../support/server.js';

const PASS = { DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'mixed-root-pass', DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'mixed-repo-pass' };

interface Verdict {
  allowed: boolean;
  digest: string | null;
  rule: string | null;
  mode: string;
  signers: string[];
  evidence: { source: string; kind: string; signer: string; format?: string }[];
  reasons: string[];
}

const pemOf = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }) as string;

/** The root key of a repository as the trust server gives it: the certificate (PEM) of 1.root.json. */
async function rootCertificateOf(serverUrl: string, gun: string): Promise<string> {
  const res = await gateRequest(serverUrl, 'GET', `/v2/${gun}/_trust/tuf/1.root.json`);
  assert.equal(res.status, 200, `1.root.json of ${gun}: ${res.text}`);
  const root = res.json as { signed: { keys: Record<string, { keyval: { public: string } }>; roles: { root: { keyids: string[] } } } };
  return Buffer.from(root.signed.keys[root.signed.roles.root.keyids[0]!]!.keyval.public, 'base64').toString('utf8');
}

describe('signet gate: rules of Notary and Cosign checks (allOf, anyOf)', { timeout: 150_000 }, () => {
  let server: TestServer;
  let registry: TestRegistry;
  let client: RegistryClient;
  let home: string;
  let dir: string;
  let gate: RunningGate;
  const gates: RunningGate[] = [];
  const images: Record<string, PushedImage> = {};
  const bot = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  const env = () => ({ DOCKER_CONFIG: home, DOCKER_CONTENT_TRUST_SERVER: server.url, CI: 'true', ...PASS });
  const signet = async (...args: string[]) => {
    const r = await runSignet(args, env());
    assert.equal(r.code, 0, `signet ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    return r;
  };
  const repo = (name: string) => `${registry.host}/mig/${name}`;
  const digestOf = (name: string) => images[name]!.digest;
  const trust = () => ({
    prod: { notary: server.url, rootKeys: ['roots.pem'] },
    ci: { cosign: { keys: { 'release-bot': 'bot.pub' } } },
  });
  const startGate = async (rules: object[]) => {
    const file = writePolicy(dir, { version: 1, trust: trust(), rules }, `policy-${gates.length}.yaml`);
    const g = await startGateServer(loadPolicy(file), { host: '127.0.0.1', port: 0, logger: captureLog().logger });
    gates.push(g);
    return g;
  };
  const verify = async (g: RunningGate, image: string) => {
    const res = await gateRequest(g.url, 'POST', '/v1/verify', { image });
    assert.equal(res.status, 200, res.text);
    return res.json as Verdict;
  };

  before(async () => {
    [server, registry] = await Promise.all([startTestServer(), startRegistry()]);
    client = new RegistryClient({ credentials: staticCredentials({}), certsDir: null });
    home = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-mixed-home-'));
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-mixed-'));
    writeFileSync(path.join(dir, 'bot.pub'), pemOf(bot.publicKey));
    // old: the old pipeline (Notary, alice); new: the new one (Cosign, release-bot); both: both;
    // drift: Notary signs v1, Cosign signed v2's digest only; none: pushed, never signed.
    for (const [name, tag] of [
      ['old', 'v1'],
      ['new', 'v1'],
      ['both', 'v1'],
      ['drift', 'v1'],
      ['drift:v2', 'v2'],
      ['none', 'v1'],
    ] as const) {
      images[name] = await registry.pushImage(`mig/${name.split(':')[0]}`, tag);
    }
    await signet('trust', 'key', 'generate', 'alice', '--dir', home);
    const alice = path.join(home, 'alice.pub');
    for (const name of ['old', 'both', 'drift', 'none']) await signet('trust', 'signer', 'add', '--key', alice, 'alice', repo(name));
    for (const name of ['old', 'both', 'drift']) await signet('trust', 'sign', `${repo(name)}:v1`);
    for (const name of ['new', 'both']) await signImageDigest(client, { registry: registry.host, repository: `mig/${name}` }, digestOf(name), bot.privateKey);
    await signImageDigest(client, { registry: registry.host, repository: 'mig/drift' }, digestOf('drift:v2'), bot.privateKey, { format: 'bundle' });
    const certs: string[] = [];
    for (const name of ['old', 'both', 'drift', 'none']) certs.push(await rootCertificateOf(server.url, repo(name)));
    writeFileSync(path.join(dir, 'roots.pem'), certs.join('\n'));

    gate = await startGate([
      {
        images: [`${registry.host}/mig/**`],
        allOf: [
          { trust: 'prod', signers: ['alice'] },
          { trust: 'ci', signers: ['release-bot'] },
        ],
        pinDigest: true,
      },
      {
        images: [`${registry.host}/mig/any-*`, `${registry.host}/mig/old`, `${registry.host}/mig/new`],
        anyOf: [
          { trust: 'prod', signers: ['alice'] },
          { trust: 'ci', signers: ['release-bot'], threshold: 1 },
        ],
        pinDigest: true,
      },
    ]);
  });

  after(async () => {
    await Promise.all(gates.map((g) => g.close()));
    client?.close();
    await server?.close();
    await registry?.stop();
    for (const d of [home, dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test('allOf: a Notary signer and a Cosign key of the same digest admit, pinned, with evidence of both', async () => {
    const v = await verify(gate, `${repo('both')}:v1`);
    assert.equal(v.allowed, true, v.reasons.join());
    assert.equal(v.digest, digestOf('both'));
    assert.equal(v.rule, `${registry.host}/mig/**`);
    assert.deepEqual(v.signers.sort(), ['alice', 'release-bot']);
    assert.deepEqual(v.evidence, [
      { source: 'prod', kind: 'notary', signer: 'alice' },
      { source: 'ci', kind: 'cosign', signer: 'release-bot', format: 'tag' },
    ]);
    const res = await gateRequest(gate.url, 'POST', '/mutate', admissionReview('Deployment', objectOf('Deployment', { containers: [`${repo('both')}:v1`] })));
    assert.equal(res.json.response.allowed, true, JSON.stringify(res.json.response.status));
    assert.deepEqual(patchOf(res.json.response), [
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: `${repo('both')}:v1@${digestOf('both')}` },
    ]);
    const byDigest = await verify(gate, `${repo('both')}@${digestOf('both')}`);
    assert.equal(byDigest.allowed, true, byDigest.reasons.join());
  });

  test('allOf: missing either denies, naming the check that failed', async () => {
    const drift = await verify(gate, `${repo('drift')}:v1`);
    assert.equal(drift.allowed, false, 'Cosign signed another digest than the one Notary signs for the tag');
    assert.deepEqual(drift.reasons, [`ci: no Cosign signature of ${repo('drift')}@${digestOf('drift')}`]);
    const none = await verify(gate, `${repo('none')}:v1`);
    assert.equal(none.allowed, false);
    assert.match(none.reasons.join(), /^prod: no signed digest for .*mig\/none:v1 by alice$/);
    const res = await gateRequest(gate.url, 'POST', '/validate', admissionReview('Pod', objectOf('Pod', { containers: [`${repo('none')}:v1`] })));
    assert.equal(res.json.response.allowed, false);
    assert.match(res.json.response.status.message, /prod: no signed digest/);
    // Under allOf the Cosign check is not asked when the Notary one fails.
    assert.equal(gate.trust.cosign.stats.resolves, 0);
    const oneKind = await startGate([{ images: [`${registry.host}/mig/**`], allOf: [{ trust: 'prod', signers: ['alice'] }, { trust: 'ci' }] }]);
    const old = await verify(oneKind, `${repo('old')}:v1`);
    assert.equal(old.allowed, false);
    assert.deepEqual(old.reasons, [`ci: no Cosign signature of ${repo('old')}@${digestOf('old')}`]);
    const fresh = await verify(oneKind, `${repo('new')}:v1`);
    assert.equal(fresh.allowed, false);
    assert.match(fresh.reasons.join(), /^prod: trust data of .*mig\/new from prod: /);
  });

  test('anyOf: either pipeline admits; the Notary check answers first, the registry gives the digest for Cosign', async () => {
    const old = await verify(gate, `${repo('old')}:v1`);
    assert.equal(old.allowed, true, old.reasons.join());
    assert.equal(old.digest, digestOf('old'));
    assert.deepEqual(old.evidence, [{ source: 'prod', kind: 'notary', signer: 'alice' }]);
    const fresh = await verify(gate, `${repo('new')}:v1`);
    assert.equal(fresh.allowed, true, fresh.reasons.join());
    assert.equal(fresh.digest, digestOf('new'));
    assert.deepEqual(fresh.evidence, [{ source: 'ci', kind: 'cosign', signer: 'release-bot', format: 'tag' }]);
    const res = await gateRequest(
      gate.url,
      'POST',
      '/mutate',
      admissionReview('Pod', objectOf('Pod', { containers: [`${repo('new')}:v1`], initContainers: [`${repo('old')}:v1`] })),
    );
    assert.equal(res.json.response.allowed, true, JSON.stringify(res.json.response.status));
    assert.deepEqual(patchOf(res.json.response), [
      { op: 'replace', path: '/spec/containers/0/image', value: `${repo('new')}:v1@${digestOf('new')}` },
      { op: 'replace', path: '/spec/initContainers/0/image', value: `${repo('old')}:v1@${digestOf('old')}` },
    ]);
  });

  test('anyOf: neither denies with both reasons; warn mode admits with them', async () => {
    const g = await startGate([
      { images: [`${registry.host}/mig/none`], anyOf: [{ trust: 'prod', signers: ['alice'] }, { trust: 'ci' }] },
      { images: [`${registry.host}/mig/drift`], anyOf: [{ trust: 'prod', signers: ['bob'] }, { trust: 'ci' }], mode: 'warn' },
    ]);
    const none = await verify(g, `${repo('none')}:v1`);
    assert.equal(none.allowed, false);
    assert.equal(none.reasons.length, 2);
    assert.match(none.reasons[0]!, /^prod: no signed digest for .*mig\/none:v1 by alice$/);
    assert.equal(none.reasons[1], `ci: no Cosign signature of ${repo('none')}@${digestOf('none')}`);
    const warned = await verify(g, `${repo('drift')}:v1`);
    assert.equal(warned.allowed, true);
    assert.equal(warned.mode, 'warn');
    assert.equal(warned.reasons.length, 2);
    // By digest, the drift image's v2 is Cosign-signed (bundle) and admitted without a warning.
    const v2 = await verify(g, `${repo('drift')}@${digestOf('drift:v2')}`);
    assert.equal(v2.allowed, true);
    assert.deepEqual(v2.reasons, []);
    assert.deepEqual(v2.evidence, [{ source: 'ci', kind: 'cosign', signer: 'release-bot', format: 'bundle', tlog: 'none' }]);
  });

  test('requireDigest applies to mixed rules before anything is asked', async () => {
    const g = await startGate([{ images: [`${registry.host}/mig/**`], anyOf: [{ trust: 'prod' }, { trust: 'ci' }], requireDigest: true }]);
    const byTag = await verify(g, `${repo('new')}:v1`);
    assert.equal(byTag.allowed, false);
    assert.match(byTag.reasons.join(), /requires images by digest/);
    assert.equal(g.trust.cosign.stats.resolves + g.trust.cosign.stats.fetches + g.trust.stats.fetches, 0);
    const byDigest = await verify(g, `${repo('new')}@${digestOf('new')}`);
    assert.equal(byDigest.allowed, true, byDigest.reasons.join());
  });
});

describe('signet gate: policy errors of Cosign sources and mixed rules', () => {
  let dir: string;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-mixed-policy-'));
    writeFileSync(path.join(dir, 'bot.pub'), pemOf(key));
    writeFileSync(path.join(dir, 'root.pem'), pemOf(key));
    writeFileSync(path.join(dir, 'small.pub'), pemOf(small));
    writeFileSync(path.join(dir, 'not-a-key.pub'), 'hello\n');
    writeFileSync(path.join(dir, 'password'), 's3cret-registry-password\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const head = `version: 1
trust:
  prod:
    notary: https://notary.example.com
    rootKeys: [root.pem]
  ci:
    cosign:
      keys:
        release-bot: bot.pub
        qa: bot.pub
`;
  const load = (text: string) => parsePolicy(text, path.join(dir, 'policy.yaml'));
  const refuse = (text: string, message: RegExp) => {
    assert.throws(
      () => load(text),
      (err: unknown) => {
        assert.ok(err instanceof GateError, String(err));
        assert.equal(err.code, 'POLICY');
        assert.match(err.message, message);
        return true;
      },
    );
  };

  test('a good policy: sources of both kinds, rules of one and several checks', () => {
    const policy = load(`${head}      auth: {username: robot, passwordFile: password, registry: registry.example.com}
      rekor:
        publicKeys: [bot.pub]
rules:
  - images: ["registry.example.com/apps/**"]
    trust: ci
    signers: [release-bot]
    threshold: 1
  - images: ["registry.example.com/migrating/**"]
    anyOf:
      - {trust: prod, signers: [releases]}
      - {trust: ci, signers: [release-bot]}
  - images: ["registry.example.com/prod/**"]
    allOf:
      - {trust: prod, signers: [releases, qa], threshold: 2}
      - {trust: ci}
`);
    assert.deepEqual([...policy.trust.keys()], ['prod']);
    assert.deepEqual([...policy.cosign.keys()], ['ci']);
    const ci = policy.cosign.get('ci')!;
    assert.deepEqual([...ci.keys.keys()], ['release-bot', 'qa']);
    assert.equal(ci.keyIds.get('release-bot'), ci.keyIds.get('qa'), 'one key under two names');
    assert.deepEqual(ci.auth, { username: 'robot', password: 's3cret-registry-password', registry: 'registry.example.com' });
    assert.equal(ci.rekorURL, 'https://rekor.sigstore.dev');
    assert.equal(ci.rekorKeys?.length, 1);
    assert.deepEqual(
      policy.rules.map((r) => [r.combine, r.checks.map((c) => `${c.kind}:${c.trust}`)]),
      [
        ['allOf', ['cosign:ci']],
        ['anyOf', ['notary:prod', 'cosign:ci']],
        ['allOf', ['notary:prod', 'cosign:ci']],
      ],
    );
    // Inline PEM works as well as a file.
    const inline = load(`version: 1
trust:
  ci:
    cosign:
      keys:
        bot: |
${pemOf(key)
  .trim()
  .split('\n')
  .map((l) => `          ${l}`)
  .join('\n')}
rules:
  - images: ["**"]
    trust: ci
`);
    assert.equal(inline.cosign.get('ci')!.keys.get('bot')!.asymmetricKeyType, 'ec');
  });

  test('each mistake names its field and line', () => {
    const rules = (text: string) => `${head}rules:\n${text}`;
    refuse(
      rules(`  - images: ["**"]\n    trust: ci\n    signers: [nobody]\n`),
      /policy\.yaml:14: rules\[0\]\.signers: ci has no key named nobody \(its keys: release-bot, qa\)$/,
    );
    refuse(
      rules(`  - images: ["**"]\n    anyOf:\n      - {trust: prod}\n      - {trust: elsewhere}\n`),
      /policy\.yaml:15: rules\[0\]\.anyOf\[1\]\.trust: no trust source named elsewhere$/,
    );
    refuse(
      rules(`  - images: ["**"]\n    allOf:\n      - {trust: ci, signers: [qa], threshold: 2}\n`),
      /policy\.yaml:14: rules\[0\]\.allOf\[0\]\.threshold: threshold 2 is more than the 1 signers listed$/,
    );
    refuse(
      rules(`  - images: ["**"]\n    trust: ci\n    signers: [qa, release-bot]\n    threshold: 3\n`),
      /rules\[0\]\.threshold: threshold 3 is more than the 2 signers listed$/,
    );
    refuse(
      rules(`  - images: ["**"]\n    trust: ci\n    anyOf:\n      - {trust: prod}\n`),
      /policy\.yaml:14: rules\[0\]\.anyOf: trust and anyOf exclude each other$/,
    );
    refuse(
      rules(`  - images: ["**"]\n    signers: [qa]\n    anyOf:\n      - {trust: ci}\n`),
      /rules\[0\]\.signers: signers goes with trust \(in allOf and anyOf, give it in each branch\)$/,
    );
    refuse(rules(`  - images: ["**"]\n    anyOf: []\n`), /rules\[0\]\.anyOf: /);
    refuse(rules(`  - images: ["**"]\n    allOf:\n      - {trust: ci, keys: [qa]}\n`), /policy\.yaml:14: rules\[0\]\.allOf\[0\]\.keys: /);
  });

  test('bad keys and sources are refused at load', () => {
    const source = (text: string) => `version: 1\ntrust:\n  ci:\n    cosign:\n${text}rules:\n  - images: ["**"]\n    trust: ci\n`;
    refuse(source(`      keys:\n        bot: missing.pub\n`), /policy\.yaml:6: trust\.ci\.cosign\.keys\.bot: cannot read .*missing\.pub: ENOENT$/);
    refuse(source(`      keys:\n        bot: not-a-key.pub\n`), /trust\.ci\.cosign\.keys\.bot: no PEM block/);
    refuse(
      source(`      keys:\n        bot: "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n"\n`),
      /trust\.ci\.cosign\.keys\.bot: .*(not a valid public key|PEM)/,
    );
    refuse(source(`      keys:\n        bot: small.pub\n`), /trust\.ci\.cosign\.keys\.bot: RSA keys below 2048 bits are not accepted/);
    refuse(source(`      keys: {}\n`), /policy\.yaml:5: trust\.ci\.cosign\.keys: name at least one key$/);
    refuse(source(`      keys:\n        Bot: bot.pub\n`), /trust\.ci\.cosign\.keys\.Bot: must be a key name/);
    refuse(source(`      keys:\n        bot: bot.pub\n      rekr: {}\n`), /policy\.yaml:7: trust\.ci\.cosign\.rekr: /);
    refuse(
      source(`      keys:\n        bot: bot.pub\n      rekor:\n        publicKeys: [not-a-key.pub]\n`),
      /trust\.ci\.cosign\.rekor\.publicKeys\[0\]: no CERTIFICATE or PUBLIC KEY block/,
    );
    refuse(
      source(`      keys:\n        bot: bot.pub\n      auth: {username: robot, passwordFile: nowhere}\n`),
      /trust\.ci\.cosign\.auth: cannot read .*nowhere: ENOENT$/,
    );
    refuse(
      `version: 1\ntrust:\n  ci:\n    cosign:\n      keys: {bot: bot.pub}\n    notary: https://n.example.com\nrules:\n  - images: ["**"]\n    trust: ci\n`,
      /policy\.yaml:6: trust\.ci\.notary: /,
    );
    refuse(`version: 1\ntrust:\n  ci: [1, 2]\nrules:\n  - images: ["**"]\n    trust: ci\n`, /policy\.yaml:3: trust\.ci: a trust source must be a mapping/);
  });

  test('signet gate refuses such a policy with exit status 2 and the field and line; the password never appears', async () => {
    const file = writePolicy(
      dir,
      `version: 1\ntrust:\n  ci:\n    cosign:\n      keys: {bot: bot.pub}\n      auth: {username: robot, passwordFile: password}\nrules:\n  - images: ["**"]\n    trust: ci\n    signers: [release-bot]\n`,
      'bad.yaml',
    );
    const r = await runSignet(['gate', '--policy', file, '--plain-http', '--port', '0'], {});
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /bad\.yaml:10: rules\[0\]\.signers: ci has no key named release-bot \(its keys: bot\)/);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
  });
});
