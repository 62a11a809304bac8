/**
 * The deploy gate with Cosign trust sources, end to end: images in a real registry (the Debian
 * docker-registry, which has no referrers API, so bundles go through the `sha256-<hex>` index
 * tag), Cosign signatures written there in both formats with Signet's Cosign library, and the
 * gate's real HTTP server answering AdmissionReviews and /v1/verify. The cases mirror the Notary
 * ones: signed (tag format, bundle format), unsigned, the wrong key, below the threshold, two
 * names of one key, a payload for another digest, a signature over another payload, `.sig`
 * manifests with garbage, a bundle whose subject differs, transparency-log entries with and
 * without a Rekor key, a registry that is down or never answers (within the budget), caching,
 * the decision log and the metrics.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  buildSignatureBundle,
  signImageDigest,
  signMessage,
  signatureTag,
  simpleSigningPayload,
  writeStoredBundle,
  writeTagSignature,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  OCI_CONFIG_MEDIA_TYPE,
} from '../../src/cosign/index.js';
import { startGateServer, type RunningGate } from '../../src/gate/gate-server.js';
import { loadPolicy } from '../../src/gate/policy.js';
import { MEDIA_TYPES, RegistryClient, referrersTag, staticCredentials, type RepositoryRef } from '../../src/registry/index.js';
import { admissionReview, captureLog, gateRequest, objectOf, patchOf, writePolicy, type CapturedLog } from '../support/gate.js';
import { PUSHER, startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';
import { makeTestRekor, type TestRekor } from '../support/rekor.js';

const MARGIN_MS = 1_500;

interface Verdict {
  allowed: boolean;
  image: string;
  digest: string | null;
  rule: string | null;
  mode: string;
  signers: string[];
  evidence: { source: string; kind: string; signer: string; format?: string; tlog?: string; note?: string }[];
  reasons: string[];
}

const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pemOf = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }) as string;

describe('signet gate: Cosign signatures in the registry', { timeout: 150_000 }, () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  let dir: string;
  let rekor: TestRekor;
  let otherRekor: TestRekor;
  let hanging: net.Server;
  let hangingHost: string;
  let closedHost: string;
  const sockets = new Set<net.Socket>();
  const gates: RunningGate[] = [];
  const images: Record<string, PushedImage> = {};
  const bot = keyPair();
  const qa = keyPair();
  const stranger = keyPair();

  const repoOf = (name: string): RepositoryRef => ({ registry: registry.host, repository: `cosign/${name}` });
  const image = (name: string, tag = 'v1') => `${registry.host}/cosign/${name}:${tag}`;
  const digestOf = (name: string) => images[name]!.digest;

  /** The trust sources every policy of this suite may use. */
  const trust = () => ({
    ci: { cosign: { keys: { 'release-bot': 'bot.pub', qa: pemOf(qa.publicKey), 'bot-alias': 'bot.pub' } } },
    'ci-rekor': { cosign: { keys: { 'release-bot': 'bot.pub' }, rekor: { publicKeys: ['rekor.pub'], url: 'https://rekor.example.com' } } },
    'ci-other-rekor': { cosign: { keys: { 'release-bot': 'bot.pub' }, rekor: { publicKeys: [otherRekor.publicPem], url: 'https://rekor.example.com' } } },
  });
  const startGate = async (rules: object[], extra: Record<string, unknown> = {}, logTo: CapturedLog = captureLog()) => {
    const file = writePolicy(dir, { version: 1, trust: trust(), rules, ...extra }, `policy-${gates.length}.yaml`);
    const g = await startGateServer(loadPolicy(file), { host: '127.0.0.1', port: 0, logger: logTo.logger });
    gates.push(g);
    return g;
  };
  const verify = async (g: RunningGate, ref: string) => {
    const res = await gateRequest(g.url, 'POST', '/v1/verify', { image: ref });
    assert.equal(res.status, 200, res.text);
    return res.json as Verdict;
  };
  const review = async (g: RunningGate, route: '/mutate' | '/validate', body: object) => {
    const res = await gateRequest(g.url, 'POST', route, body);
    assert.equal(res.status, 200, res.text);
    return res.json.response as { allowed: boolean; status?: { code: number; message: string }; patch?: string; patchType?: string; warnings?: string[] };
  };

  let gate: RunningGate;
  let log: CapturedLog;

  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ credentials: staticCredentials({}), certsDir: null });
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-cosign-'));
    rekor = makeTestRekor({ name: 'rekor.example.com' });
    otherRekor = makeTestRekor({ name: 'rekor.example.com' });
    writeFileSync(path.join(dir, 'bot.pub'), pemOf(bot.publicKey));
    writeFileSync(path.join(dir, 'rekor.pub'), rekor.publicPem);
    hanging = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    hangingHost = `127.0.0.1:${(hanging.address() as AddressInfo).port}`;
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedHost = `127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((r) => probe.close(() => r()));

    for (const name of [
      'tagged',
      'bundled',
      'both',
      'unsigned',
      'wrong-key',
      'other-digest',
      'other-payload',
      'garbage',
      'garbage-index',
      'garbage-but-bundle',
      'subject',
      'tlog',
      'cached',
      'referrers-not-index',
      'junk-bundle',
    ]) {
      images[name] = await registry.pushImage(`cosign/${name}`, 'v1');
    }
    images['tagged:v2'] = await registry.pushImage('cosign/tagged', 'v2');
    const sign = (name: string, key: KeyObject, format: 'tag' | 'bundle' | 'both') => signImageDigest(client, repoOf(name), digestOf(name), key, { format });
    await sign('tagged', bot.privateKey, 'tag');
    await sign('bundled', bot.privateKey, 'bundle');
    await sign('both', bot.privateKey, 'both');
    await sign('both', qa.privateKey, 'tag');
    await sign('wrong-key', stranger.privateKey, 'both');
    await sign('cached', bot.privateKey, 'tag');
    // A payload for another digest (tagged:v2's), signed by the bot, under other-digest's .sig tag.
    const elsewhere = simpleSigningPayload(`${registry.host}/cosign/other-digest`, digestOf('tagged:v2'));
    await writeTagSignature(client, repoOf('other-digest'), digestOf('other-digest'), {
      payload: elsewhere,
      signatureBase64: signMessage(bot.privateKey, elsewhere).toString('base64'),
    });
    // The right payload, with the bot's signature over another one.
    const right = simpleSigningPayload(`${registry.host}/cosign/other-payload`, digestOf('other-payload'));
    const another = simpleSigningPayload(`${registry.host}/cosign/other-payload`, digestOf('other-payload'), { note: 'another' });
    await writeTagSignature(client, repoOf('other-payload'), digestOf('other-payload'), {
      payload: right,
      signatureBase64: signMessage(bot.privateKey, another).toString('base64'),
    });
    // `.sig` manifests with garbage: a layer whose signature is not base64 and one whose payload is
    // not JSON (signed by the bot); an image index where a manifest belongs (twice: the second
    // image also has a good bundle).
    const junk = await client.pushBlob(repoOf('garbage'), randomBytes(200));
    const signedJunk = Buffer.from('{"critical": not json');
    const signedJunkBlob = await client.pushBlob(repoOf('garbage'), signedJunk);
    const config = await client.pushBlob(repoOf('garbage'), Buffer.from('{}'));
    const garbageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: OCI_CONFIG_MEDIA_TYPE, ...config },
      layers: [
        { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, ...junk, annotations: { [SIGNATURE_ANNOTATION]: 'this is not base64!' } },
        {
          mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
          ...signedJunkBlob,
          annotations: { [SIGNATURE_ANNOTATION]: signMessage(bot.privateKey, signedJunk).toString('base64') },
        },
      ],
    };
    await client.putManifest(repoOf('garbage'), signatureTag(digestOf('garbage')), Buffer.from(JSON.stringify(garbageManifest)), MEDIA_TYPES.ociManifest);
    const emptyIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }));
    for (const name of ['garbage-index', 'garbage-but-bundle']) {
      await client.putManifest(repoOf(name), signatureTag(digestOf(name)), emptyIndex, MEDIA_TYPES.ociIndex);
    }
    await sign('garbage-but-bundle', bot.privateKey, 'bundle');
    // The referrers index tag holding an image instead of an index (the tag format is fine); a bundle that is junk.
    await sign('referrers-not-index', bot.privateKey, 'tag');
    await registry.pushImage('cosign/referrers-not-index', referrersTag(digestOf('referrers-not-index')));
    await writeStoredBundle(client, repoOf('junk-bundle'), digestOf('junk-bundle'), Buffer.from('{"mediaType": "junk"'));
    // A bundle that signs tagged:v2's digest, stored as a referrer of subject's.
    await writeStoredBundle(client, repoOf('subject'), digestOf('subject'), buildSignatureBundle(bot.privateKey, bot.publicKey, digestOf('tagged:v2')));
    // A bundle with a transparency-log entry from the stand-in Rekor.
    await writeStoredBundle(
      client,
      repoOf('tlog'),
      digestOf('tlog'),
      rekor.addEntry(buildSignatureBundle(bot.privateKey, bot.publicKey, digestOf('tlog')), bot.publicKey),
    );

    log = captureLog();
    gate = await startGate(
      [
        { images: [`${registry.host}/cosign/**`], trust: 'ci', signers: ['release-bot'], pinDigest: true },
        { images: [`${registry.host}/cosign/both`], trust: 'ci', signers: ['release-bot', 'qa'], threshold: 2, pinDigest: true },
        { images: [`${registry.host}/cosign/tagged`], trust: 'ci', signers: ['release-bot', 'qa'], threshold: 2 },
        { images: ['**'], action: 'deny' },
      ],
      {},
      log,
    );
  });

  after(async () => {
    await Promise.all(gates.map((g) => g.close()));
    client?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (hanging ? hanging.close(() => r()) : r()));
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('signed in the tag format: /validate admits, /mutate pins the tag to its digest, /v1/verify names the key and format', async () => {
    const g = await startGate([{ images: [`${registry.host}/cosign/**`], trust: 'ci', signers: ['release-bot'], threshold: 1, pinDigest: true }]);
    const body = admissionReview('Deployment', objectOf('Deployment', { containers: [image('tagged')] }));
    const validated = await review(g, '/validate', body);
    assert.equal(validated.allowed, true, JSON.stringify(validated.status));
    assert.equal(validated.patch, undefined);
    const mutated = await review(g, '/mutate', body);
    assert.equal(mutated.allowed, true, JSON.stringify(mutated.status));
    assert.deepEqual(patchOf(mutated), [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: `${image('tagged')}@${digestOf('tagged')}` }]);
    const v = await verify(g, image('tagged'));
    assert.deepEqual(v, {
      allowed: true,
      image: image('tagged'),
      digest: digestOf('tagged'),
      rule: `${registry.host}/cosign/**`,
      mode: 'enforce',
      signers: ['release-bot'],
      evidence: [{ source: 'ci', kind: 'cosign', signer: 'release-bot', format: 'tag' }],
      reasons: [],
    });
    // By digest, and tag@digest: the digest given is what is verified, and nothing is patched.
    for (const ref of [`${registry.host}/cosign/tagged@${digestOf('tagged')}`, `${image('tagged')}@${digestOf('tagged')}`]) {
      const res = await review(g, '/mutate', admissionReview('Pod', objectOf('Pod', { containers: [ref] })));
      assert.equal(res.allowed, true, `${ref}: ${JSON.stringify(res.status)}`);
      assert.equal(res.patch, undefined, ref);
    }
    // v2 of the same repository is not signed.
    const v2 = await verify(g, image('tagged', 'v2'));
    assert.equal(v2.allowed, false);
    assert.match(v2.reasons.join(), new RegExp(`no Cosign signature of .*cosign/tagged@${digestOf('tagged:v2')}`));
  });

  test('signed in the bundle format (through the referrers tag schema): admitted, the evidence says bundle and that it has no log entry', async () => {
    const v = await verify(gate, image('bundled'));
    assert.equal(v.allowed, true, v.reasons.join());
    assert.equal(v.digest, digestOf('bundled'));
    assert.deepEqual(v.evidence, [{ source: 'ci', kind: 'cosign', signer: 'release-bot', format: 'bundle', tlog: 'none' }]);
    const both = await verify(gate, image('both'));
    assert.equal(both.allowed, true, both.reasons.join());
    assert.deepEqual(both.signers.sort(), ['qa', 'release-bot']);
    assert.deepEqual(
      both.evidence.map((e) => `${e.signer}/${e.format}`).sort(),
      ['qa/tag', 'release-bot/bundle', 'release-bot/tag'],
      'each key and format that counted',
    );
  });

  test('denials: unsigned, the wrong key, below the threshold, a payload for another digest, a signature over another payload', async () => {
    const cases: [string, RegExp][] = [
      [image('unsigned'), new RegExp(`no Cosign signature of .*cosign/unsigned@${digestOf('unsigned')}$`)],
      [image('wrong-key'), /no Cosign signature of .*cosign\/wrong-key@sha256:[0-9a-f]{64} by release-bot \(.*signed by none of the configured keys/],
      [image('tagged'), /cosign\/tagged@sha256:[0-9a-f]{64}: Cosign signatures by 1 of release-bot, qa \(release-bot\), 2 needed; missing qa/],
      [
        image('other-digest'),
        new RegExp(`by release-bot \\(tag signature 0: signed payload is for ${digestOf('tagged:v2')}, not ${digestOf('other-digest')}\\)`),
      ],
      [image('other-payload'), /cosign\/other-payload@sha256:[0-9a-f]{64} by release-bot \(tag signature 0: signed by none of the configured keys\)/],
    ];
    for (const [ref, reason] of cases) {
      for (const route of ['/mutate', '/validate'] as const) {
        const res = await review(gate, route, admissionReview('StatefulSet', objectOf('StatefulSet', { containers: [image('bundled'), ref] })));
        assert.equal(res.allowed, false, `${route} ${ref}`);
        assert.equal(res.status?.code, 403, ref);
        assert.match(res.status!.message, reason, ref);
        assert.equal(res.patch, undefined, 'no patch with a denial');
      }
      const v = await verify(gate, ref);
      assert.equal(v.allowed, false, ref);
      assert.deepEqual(v.evidence, [], ref);
    }
  });

  test('two names of one key count once toward a threshold, and either name counts alone', async () => {
    const g = await startGate([
      { images: [`${registry.host}/cosign/tagged`], trust: 'ci', signers: ['release-bot', 'bot-alias'], threshold: 2 },
      { images: [`${registry.host}/cosign/bundled`], trust: 'ci', signers: ['bot-alias'] },
    ]);
    const twice = await verify(g, image('tagged'));
    assert.equal(twice.allowed, false);
    assert.match(twice.reasons.join(), /Cosign signatures by 1 of release-bot, bot-alias \(release-bot\), 2 needed; missing bot-alias/);
    const alias = await verify(g, image('bundled'));
    assert.equal(alias.allowed, true, alias.reasons.join());
    assert.deepEqual(alias.signers, ['bot-alias']);
    assert.deepEqual(alias.evidence, [{ source: 'ci', kind: 'cosign', signer: 'bot-alias', format: 'bundle', tlog: 'none' }]);
    // Without signers, any one key of the source will do.
    const any = await startGate([{ images: [`${registry.host}/cosign/**`], trust: 'ci' }]);
    assert.equal((await verify(any, image('tagged'))).allowed, true);
    assert.equal((await verify(any, image('wrong-key'))).allowed, false);
  });

  test('`.sig` manifests with garbage and a bundle whose subject differs: denied with the reason, never an error; a good bundle still counts', async () => {
    const garbage = await verify(gate, image('garbage'));
    assert.equal(garbage.allowed, false);
    assert.match(garbage.reasons.join(), /layer 0: the signature annotation is not base64/);
    assert.match(garbage.reasons.join(), /tag signature \d+: .*(JSON|payload)/i);
    const index = await verify(gate, image('garbage-index'));
    assert.equal(index.allowed, false);
    assert.match(index.reasons.join(), /tag format: .*cosign\/garbage-index:sha256-[0-9a-f]{64}\.sig: the signature manifest has no layers/);
    const rescued = await verify(gate, image('garbage-but-bundle'));
    assert.equal(rescued.allowed, true, rescued.reasons.join());
    assert.deepEqual(
      rescued.evidence.map((e) => e.format),
      ['bundle'],
    );
    const subject = await verify(gate, image('subject'));
    assert.equal(subject.allowed, false);
    assert.match(subject.reasons.join(), new RegExp(`bundle sha256:[0-9a-f]{64}: the statement's subject is not ${digestOf('subject')}`));
    // A referrers index tag that is not an index spoils the bundle format only.
    const notIndex = await verify(gate, image('referrers-not-index'));
    assert.equal(notIndex.allowed, true, notIndex.reasons.join());
    assert.deepEqual(notIndex.evidence, [{ source: 'ci', kind: 'cosign', signer: 'release-bot', format: 'tag' }]);
    const junk = await verify(gate, image('junk-bundle'));
    assert.equal(junk.allowed, false);
    assert.match(junk.reasons.join(), /bundle sha256:[0-9a-f]{64}: not a Sigstore bundle/);
    for (const name of ['garbage', 'garbage-index', 'subject', 'junk-bundle']) {
      const res = await review(gate, '/validate', admissionReview('Job', objectOf('Job', { containers: [image(name)] })));
      assert.equal(res.allowed, false, name);
      assert.equal(res.status?.code, 403, name);
    }
  });

  test('transparency-log entries: not checked without a Rekor key (and the decision says so), verified with one, refused with another log key', async () => {
    const unchecked = await verify(gate, image('tlog'));
    assert.equal(unchecked.allowed, true, unchecked.reasons.join());
    assert.deepEqual(unchecked.evidence, [
      {
        source: 'ci',
        kind: 'cosign',
        signer: 'release-bot',
        format: 'bundle',
        tlog: 'ignored',
        note: 'transparency-log entry not checked: no Rekor key configured',
      },
    ]);
    const withRekor = await startGate([{ images: [`${registry.host}/cosign/**`], trust: 'ci-rekor', signers: ['release-bot'] }]);
    const verified = await verify(withRekor, image('tlog'));
    assert.equal(verified.allowed, true, verified.reasons.join());
    assert.equal(verified.evidence[0]!.tlog, 'verified');
    assert.match(verified.evidence[0]!.note!, /transparency-log entry verified/);
    // A bundle with no entry cannot meet a Rekor key's demand for one.
    const noEntry = await verify(withRekor, image('bundled'));
    assert.equal(noEntry.allowed, false);
    assert.match(noEntry.reasons.join(), /transparency-log entry/);
    const otherLog = await startGate([{ images: [`${registry.host}/cosign/**`], trust: 'ci-other-rekor', signers: ['release-bot'] }]);
    const refused = await verify(otherLog, image('tlog'));
    assert.equal(refused.allowed, false);
    assert.match(refused.reasons.join(), /the transparency-log entry does not verify with the configured Rekor keys/);
  });

  test('a registry that is down or never answers: an answer within the budget, denied in enforce with the reason, a warning in warn', async () => {
    const budgetMs = 400;
    for (const host of [closedHost, hangingHost]) {
      const g = await startGate(
        [
          { images: [`${host}/apps/**`], trust: 'ci', signers: ['release-bot'] },
          { images: [`${host}/warned/**`], trust: 'ci', signers: ['release-bot'], mode: 'warn' },
        ],
        { budgetMs },
      );
      for (const ref of [`${host}/apps/web:v1`, `${host}/apps/web@sha256:${'a'.repeat(64)}`]) {
        const enforce = await gateRequest(g.url, 'POST', '/validate', admissionReview('ReplicaSet', objectOf('ReplicaSet', { containers: [ref] })));
        assert.equal(enforce.status, 200, enforce.text);
        assert.ok(enforce.ms < budgetMs + MARGIN_MS, `${ref}: answered in ${enforce.ms} ms`);
        assert.equal(enforce.json.response.allowed, false, ref);
        assert.match(
          enforce.json.response.status.message,
          host === closedHost
            ? /(no digest from the registry|Cosign signatures of .*): (UNREACHABLE|TIMEOUT)/
            : /did not answer .* within the budget of 400 ms/,
          ref,
        );
      }
      const warn = await gateRequest(g.url, 'POST', '/mutate', admissionReview('Pod', objectOf('Pod', { containers: [`${host}/warned/web:v1`] })));
      assert.ok(warn.ms < budgetMs + MARGIN_MS, `answered in ${warn.ms} ms`);
      assert.equal(warn.json.response.allowed, true);
      assert.equal(warn.json.response.patch, undefined);
      assert.match(warn.json.response.warnings.join(), /\(warn mode: not refused for this\)/);
    }
  });

  test('a tag the registry does not have, and an image the rule does not reach: denied with the reason', async () => {
    const missing = await verify(gate, image('tagged', 'no-such-tag'));
    assert.equal(missing.allowed, false);
    assert.match(missing.reasons.join(), /cosign\/tagged:no-such-tag: no digest from the registry: NOT_FOUND/);
    const other = await verify(gate, 'quay.io/x/y:1');
    assert.deepEqual(other.reasons, ['the rule ** denies quay.io/x/y']);
  });

  test('results are cached per source, repository and digest; concurrent lookups share one read of the registry', async () => {
    const g = await startGate([{ images: [`${registry.host}/cosign/**`], trust: 'ci', signers: ['release-bot'] }]);
    const stats = g.trust.cosign.stats;
    const answers = await Promise.all(Array.from({ length: 8 }, () => verify(g, `${registry.host}/cosign/cached@${digestOf('cached')}`)));
    assert.ok(answers.every((a) => a.allowed));
    assert.equal(stats.fetches, 1, 'one read for eight concurrent lookups');
    await verify(g, image('cached'));
    assert.equal(stats.fetches, 1, 'by tag: the digest is looked up, the result is the cached one');
    assert.equal(stats.resolves, 1);
    await verify(g, image('cached'));
    assert.equal(stats.resolves, 1, 'the tag is looked up once per refresh interval');
    assert.ok(stats.hits >= 2);
    const metrics = await gateRequest(g.url, 'GET', '/metrics');
    assert.match(metrics.text, /^signet_gate_cosign_cache_total\{event="fetch"\} 1$/m);
    assert.match(metrics.text, /^signet_gate_cosign_cache_total\{event="resolve"\} 1$/m);
  });

  test('a removed signature stops counting after the refresh interval', async () => {
    const name = 'cached';
    const g = await startGate([{ images: [`${registry.host}/cosign/**`], trust: 'ci', signers: ['release-bot'] }], { cache: { refreshSeconds: 1 } });
    const ref = `${registry.host}/cosign/${name}@${digestOf(name)}`;
    assert.equal((await verify(g, ref)).allowed, true);
    // Replace the .sig tag with an empty signature image (what a tag delete leaves, as far as counting goes).
    const config = await client.pushBlob(repoOf(name), Buffer.from('{}'));
    const empty = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: { mediaType: OCI_CONFIG_MEDIA_TYPE, ...config }, layers: [] };
    await client.putManifest(repoOf(name), signatureTag(digestOf(name)), Buffer.from(JSON.stringify(empty)), MEDIA_TYPES.ociManifest);
    const until = Date.now() + 8_000;
    let allowed = true;
    while (allowed && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      allowed = (await verify(g, ref)).allowed;
    }
    assert.equal(allowed, false, 'denied within two refresh intervals');
    // Restore it for any later use.
    await signImageDigest(client, repoOf(name), digestOf(name), bot.privateKey, { format: 'tag' });
  });

  test('a reloaded policy keeps the Cosign results of unchanged sources, and starts afresh for a source whose keys changed', async () => {
    const rules = [{ images: [`${registry.host}/cosign/**`], trust: 'ci', signers: ['release-bot'] }];
    const g = await startGate(rules);
    const ref = `${registry.host}/cosign/bundled@${digestOf('bundled')}`;
    assert.equal((await verify(g, ref)).allowed, true);
    assert.equal(g.trust.cosign.stats.fetches, 1);
    g.setPolicy(loadPolicy(writePolicy(dir, { version: 1, trust: trust(), rules }, 'reload-same.yaml')));
    assert.equal((await verify(g, ref)).allowed, true);
    assert.equal(g.trust.cosign.stats.fetches, 1, 'the same source: the cached result');
    // release-bot now names the stranger's key: the bot's signature no longer counts.
    const changed = { ...trust(), ci: { cosign: { keys: { 'release-bot': pemOf(stranger.publicKey) } } } };
    g.setPolicy(loadPolicy(writePolicy(dir, { version: 1, trust: changed, rules }, 'reload-changed.yaml')));
    const after = await verify(g, ref);
    assert.equal(after.allowed, false);
    assert.equal(g.trust.cosign.stats.fetches, 2);
  });

  test('each decision line names the keys and formats that counted', async () => {
    const body = admissionReview('Deployment', objectOf('Deployment', { containers: [image('both')] }, 'checkout', 'payments'));
    const res = await review(gate, '/mutate', body);
    assert.equal(res.allowed, true, JSON.stringify(res.status));
    assert.deepEqual(patchOf(res), [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: `${image('both')}@${digestOf('both')}` }]);
    const lines = log.lines().filter((l) => l['uid'] === body.request.uid);
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(line['msg'], 'gate decision');
    assert.equal(line['digest'], digestOf('both'));
    assert.equal(line['rule'], `${registry.host}/cosign/both`);
    assert.deepEqual([...(line['signers'] as string[])].sort(), ['qa', 'release-bot']);
    assert.deepEqual((line['evidence'] as Verdict['evidence']).map((e) => `${e.source}:${e.signer}/${e.format}`).sort(), [
      'ci:qa/tag',
      'ci:release-bot/bundle',
      'ci:release-bot/tag',
    ]);
  });
});

describe('signet gate: Cosign signatures in a registry behind token auth', { timeout: 60_000 }, () => {
  let registry: TestRegistry;
  let dir: string;
  const pushed: Record<string, PushedImage> = {};
  const gates: RunningGate[] = [];
  const bot = keyPair();
  const savedDockerConfig = process.env['DOCKER_CONFIG'];
  const names = ['authed', 'scoped', 'elsewhere', 'anonymous'] as const;

  before(async () => {
    registry = await startRegistry({ users: [{ name: 'gate', password: 'gate-registry-secret', repositories: ['priv/'], actions: ['pull'] }] });
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-cosign-auth-'));
    // An empty docker config: the credentials are the policy's or none.
    process.env['DOCKER_CONFIG'] = path.join(dir, 'docker');
    writeFileSync(path.join(dir, 'bot.pub'), pemOf(bot.publicKey));
    writeFileSync(path.join(dir, 'gate-password'), 'gate-registry-secret\n');
    const pusher = new RegistryClient({
      credentials: staticCredentials({ [registry.host]: { username: PUSHER.name, password: PUSHER.password } }),
      certsDir: null,
    });
    for (const name of names) {
      pushed[name] = await registry.pushImage(`priv/${name}`, 'v1');
      await signImageDigest(pusher, { registry: registry.host, repository: `priv/${name}` }, pushed[name].digest, bot.privateKey, { format: 'both' });
    }
    pusher.close();
  });
  after(async () => {
    await Promise.all(gates.map((g) => g.close()));
    await registry?.stop();
    if (savedDockerConfig === undefined) delete process.env['DOCKER_CONFIG'];
    else process.env['DOCKER_CONFIG'] = savedDockerConfig;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the source's credentials are used, for its registry only when it names one; without them: denied with the reason", async () => {
    const log = captureLog();
    const keys = { 'release-bot': 'bot.pub' };
    const auth = { username: 'gate', passwordFile: 'gate-password' };
    const file = writePolicy(dir, {
      version: 1,
      trust: {
        authed: { cosign: { keys, auth } },
        scoped: { cosign: { keys, auth: { ...auth, registry: registry.host } } },
        elsewhere: { cosign: { keys, auth: { ...auth, registry: 'other.example.com' } } },
        anonymous: { cosign: { keys } },
      },
      rules: names.map((name) => ({ images: [`${registry.host}/priv/${name}`], trust: name, pinDigest: true })),
    });
    const g = await startGateServer(loadPolicy(file), { host: '127.0.0.1', port: 0, logger: log.logger });
    gates.push(g);
    const verdict = async (ref: string) => (await gateRequest(g.url, 'POST', '/v1/verify', { image: ref })).json as Verdict;
    for (const name of ['authed', 'scoped'] as const) {
      const v = await verdict(`${registry.host}/priv/${name}:v1`);
      assert.equal(v.allowed, true, `${name}: ${v.reasons.join()}`);
      assert.equal(v.digest, pushed[name]!.digest);
      assert.deepEqual(v.evidence.map((e) => e.format).sort(), ['bundle', 'tag'], name);
    }
    for (const name of ['elsewhere', 'anonymous'] as const) {
      for (const ref of [`${registry.host}/priv/${name}:v1`, `${registry.host}/priv/${name}@${pushed[name]!.digest}`]) {
        const v = await verdict(ref);
        assert.equal(v.allowed, false, ref);
        assert.match(v.reasons.join(), /UNAUTHORIZED|DENIED/, `${ref}: ${v.reasons.join()}`);
      }
    }
    assert.doesNotMatch(JSON.stringify(log.lines()), /gate-registry-secret/);
  });
});
