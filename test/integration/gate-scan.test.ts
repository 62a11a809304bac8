/**
 * The gate's `scan` requirement: "signed by ci with a passing scan no older than 7 days". The
 * evidence is what Signet's server-held signers sign into a target's `custom.signet.scan` after
 * checking a scan report; the gate reads it from the verified targets/ci role of a static Notary
 * server, so a stale, missing or foreign scan is refused with its reason and a fresh one admits
 * with the evidence in the decision. Policies that misuse `scan` are refused at load.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decideImage } from '../../src/gate/decide.js';
import { parsePolicy, type Policy } from '../../src/gate/policy.js';
import { GateTrustCache } from '../../src/gate/trust-cache.js';
import { StaticNotaryServer } from '../support/static-notary.js';
import { certKey, ecdsaKey, inDays, rootDoc, signFile, snapshotDoc, targetsDoc } from '../support/tuf-kit.js';

const GUN = 'registry.example.com/apps/shop';
const DAY_MS = 86_400_000;
const hexOf = (text: string) => createHash('sha256').update(text).digest('hex');

function scanned(digestHex: string, createdAt: string | null, forDigest = digestHex) {
  return {
    signet: {
      signer: 'ci',
      scan: {
        reportDigest: `sha256:${hexOf(`report ${createdAt}`)}`,
        format: 'trivy',
        scanner: 'Trivy',
        scannerVersion: '0.58.1',
        dbDate: createdAt,
        createdAt,
        digest: `sha256:${forDigest}`,
        counts: { CRITICAL: 0, HIGH: 1, MEDIUM: 4, LOW: 2, UNKNOWN: 0 },
        ignored: [],
      },
    },
  };
}

describe('gate: signed with a passing scan no older than maxAge', () => {
  let dir: string;
  let notary: StaticNotaryServer;
  let policy: Policy;
  let trust: GateTrustCache;
  const now = Date.now();
  const digests = { fresh: hexOf('fresh'), stale: hexOf('stale'), none: hexOf('none'), foreign: hexOf('foreign'), timeless: hexOf('timeless') };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-scan-'));
    const k = { root: certKey({ commonName: GUN }), targets: ecdsaKey(), snapshot: ecdsaKey(), timestamp: ecdsaKey(), ci: ecdsaKey() };
    const entry = (hex: string, custom?: unknown) => ({
      hashes: { sha256: Buffer.from(hex, 'hex').toString('base64') },
      length: 1234,
      ...(custom !== undefined ? { custom } : {}),
    });
    const root = signFile(rootDoc({ root: [k.root], targets: [k.targets], snapshot: [k.snapshot], timestamp: [k.timestamp] }), [k.root]);
    const targets = signFile(targetsDoc({ delegations: [{ name: 'targets/ci', keys: [k.ci] }] }), [k.targets]);
    const ci = signFile(
      targetsDoc({
        targets: {
          fresh: entry(digests.fresh, scanned(digests.fresh, new Date(now - DAY_MS).toISOString())),
          stale: entry(digests.stale, scanned(digests.stale, new Date(now - 10 * DAY_MS).toISOString())),
          none: entry(digests.none),
          foreign: entry(digests.foreign, scanned(digests.foreign, new Date(now - DAY_MS).toISOString(), hexOf('another image'))),
          timeless: entry(digests.timeless, scanned(digests.timeless, null)),
        },
      }),
      [k.ci],
    );
    const snapshot = signFile(snapshotDoc({ files: { root, targets, 'targets/ci': ci } }), [k.snapshot]);
    const timestamp = signFile(
      {
        _type: 'Timestamp',
        expires: inDays(14),
        meta: { snapshot: { hashes: { sha256: createHash('sha256').update(snapshot).digest('base64') }, length: snapshot.length } },
        version: 1,
      },
      [k.timestamp],
    );
    notary = new StaticNotaryServer();
    await notary.start();
    notary.serve(GUN, { root, targets, snapshot, timestamp, 'targets/ci': ci });
    writeFileSync(path.join(dir, 'root.pem'), Buffer.from(k.root.publicB64, 'base64'));
    policy = parsePolicy(
      `version: 1
trust:
  prod:
    notary: ${notary.url}
    rootKeys: [root.pem]
rules:
  - images: ["registry.example.com/apps/**"]
    trust: prod
    signers: [ci]
    scan: {maxAge: 7d}
`,
      path.join(dir, 'policy.yaml'),
    );
    trust = new GateTrustCache(policy.refreshMs);
    trust.configure(policy.trust.values(), policy.refreshMs);
  });
  after(async () => {
    trust?.close();
    await notary?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a scan from yesterday admits, with the scan in the evidence', async () => {
    const d = await decideImage(`${GUN}:fresh`, policy, trust);
    assert.equal(d.allowed, true, d.reasons.join('; '));
    assert.equal(d.digest, `sha256:${digests.fresh}`);
    assert.equal(d.evidence[0]!.signer, 'ci');
    assert.equal(d.evidence[0]!.scan?.scanner, 'Trivy');
    assert.equal(d.evidence[0]!.scan?.counts['HIGH'], 1);
  });

  test('a scan older than 7 days, no scan, a scan of another digest, a scan without a time: each denied with its reason', async () => {
    const cases: [string, RegExp][] = [
      ['stale', /ci: the scan report is from .*, older than 604800 s/],
      ['none', /no passing scan no older than 604800 s signed with it \(ci: no scan evidence\)/],
      ['foreign', /ci: the scan evidence is for sha256:/],
      ['timeless', /ci: scan evidence without a report time/],
    ];
    for (const [tag, reason] of cases) {
      const d = await decideImage(`${GUN}:${tag}`, policy, trust);
      assert.equal(d.allowed, false, tag);
      assert.match(d.reasons.join('; '), reason, tag);
    }
  });

  test('policies misusing scan are refused at load', () => {
    writeFileSync(path.join(dir, 'bot.pub'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const bad = (rule: string, pattern: RegExp) =>
      assert.throws(
        () =>
          parsePolicy(
            `version: 1
trust:
  prod: {notary: ${notary.url}, rootKeys: [root.pem]}
  keys: {cosign: {keys: {bot: bot.pub}}}
rules:
${rule}
`,
            path.join(dir, 'policy.yaml'),
          ),
        pattern,
      );
    bad('  - {images: ["**"], trust: prod, scan: {maxAge: 7x}}', /maxAge is seconds, or a duration such as 90m, 12h or 7d/);
    bad('  - {images: ["**"], trust: keys, scan: {maxAge: 1d}}', /scan evidence is signed into Notary targets; keys is a Cosign source/);
    bad('  - {images: ["**"], anyOf: [{trust: prod}], scan: {maxAge: 1d}}', /scan goes with trust/);
  });
});
