/**
 * Rule semantics of the gate that need no trust data: host names matched case-insensitively
 * (an upper-case registry host must not slip past its rule), `requireDigest`, and `mode: warn`
 * on an `action: deny` rule. The trust source is a closed port: a rule that gets as far as
 * asking it denies with the reason.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decideImage } from '../../src/gate/decide.js';
import { parsePolicy, type Policy } from '../../src/gate/policy.js';
import { GateTrustCache } from '../../src/gate/trust-cache.js';
import { certKey } from '../support/tuf-kit.js';

describe('gate rules', () => {
  let dir: string;
  let policy: Policy;
  let trust: GateTrustCache;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-rules-'));
    const key = certKey({ commonName: 'registry.example.com/prod/app' });
    writeFileSync(path.join(dir, 'root.pem'), Buffer.from(key.publicB64, 'base64'));
    policy = parsePolicy(
      `version: 1
trust:
  down:
    notary: http://127.0.0.1:9
    rootKeys: [root.pem]
rules:
  - images: ["registry.example.com/public/**"]
    action: allow
  - images: ["registry.example.com/prod/**"]
    trust: down
    requireDigest: true
  - images: ["registry.example.com/legacy/**"]
    action: deny
    mode: warn
  - images: ["**"]
    action: deny
budgetMs: 1000
`,
      path.join(dir, 'policy.yaml'),
    );
    trust = new GateTrustCache(policy.refreshMs);
    trust.configure(policy.trust.values(), policy.refreshMs);
  });
  after(() => {
    trust.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('registry host names are matched without regard to case', async () => {
    const upper = await decideImage('Registry.Example.COM/public/tool:1', policy, trust);
    assert.equal(upper.allowed, true);
    assert.equal(upper.rule, 'registry.example.com/public/**');
    const prod = await decideImage('REGISTRY.example.com/prod/app:v1', policy, trust);
    assert.equal(prod.rule, 'registry.example.com/prod/**', 'an upper-case host does not fall through to another rule');
    assert.equal(prod.allowed, false);
  });

  test('requireDigest refuses an image by tag before asking the trust source', async () => {
    const byTag = await decideImage('registry.example.com/prod/app:v1', policy, trust);
    assert.equal(byTag.allowed, false);
    assert.match(byTag.reasons.join(), /requires images by digest/);
    assert.equal(trust.stats.fetches, 0);
    const byDigest = await decideImage(`registry.example.com/prod/app@sha256:${'a'.repeat(64)}`, policy, trust);
    assert.equal(byDigest.allowed, false);
    assert.match(byDigest.reasons.join(), /trust data of registry\.example\.com\/prod\/app from down/);
    assert.equal(trust.stats.fetches, 1);
    // A failure is remembered briefly instead of asking again at once.
    await decideImage(`registry.example.com/prod/app@sha256:${'b'.repeat(64)}`, policy, trust);
    assert.equal(trust.stats.fetches, 1);
  });

  test('mode: warn on an action: deny rule admits with the reason', async () => {
    const legacy = await decideImage('registry.example.com/legacy/old:1', policy, trust);
    assert.equal(legacy.allowed, true);
    assert.equal(legacy.mode, 'warn');
    assert.match(legacy.reasons.join(), /denies/);
    const other = await decideImage('elsewhere.example.com/x:1', policy, trust);
    assert.equal(other.allowed, false);
  });
});
