/** The rules of server-held signers: glob matching, identity rules, tag patterns, and which roles a signer signs into. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globMatch, identityProblem, tagAllowed, type CallerIdentity } from '../../src/auth/identity.js';
import type { RootSigned, TargetsSigned } from '../../src/tuf/notary/metadata.js';
import { nextTargetsWith, signerRoles, targetEntry } from '../../src/tuf/notary/signer-targets.js';

test('globs: * stays within a path segment, ** crosses them, ? is one character; everything else is literal', () => {
  assert.ok(globMatch('refs/heads/main', 'refs/heads/main'));
  assert.ok(!globMatch('refs/heads/main', 'refs/heads/mainx'));
  assert.ok(globMatch('refs/heads/*', 'refs/heads/main'));
  assert.ok(!globMatch('refs/heads/*', 'refs/heads/feature/x'));
  assert.ok(globMatch('refs/tags/**', 'refs/tags/release/1.0'));
  assert.ok(globMatch('v?', 'v1'));
  assert.ok(!globMatch('v?', 'v10'));
  assert.ok(globMatch('v1.*', 'v1.2'));
  assert.ok(!globMatch('v1.*', 'v1x2'), 'a dot is a dot');
  assert.ok(!globMatch('a+b', 'aab'), 'regular expression characters are literal');
  assert.ok(globMatch('(x)[y]{z}$^|', '(x)[y]{z}$^|'));
});

const id = (claims: Record<string, unknown>, subject = 'repo:org/app:ref:refs/heads/main'): CallerIdentity => ({ kind: 'oidc', subject, claims });

test('identity rules: any rule admits; every condition of a rule must hold; absent, non-text claims match nothing', () => {
  assert.equal(identityProblem(undefined, id({})), null, 'no rules: everyone authenticated');
  assert.equal(identityProblem([], id({})), null);
  const rules = [{ kind: 'oidc' as const, claims: { repository: 'org/app', ref: ['refs/heads/main', 'refs/tags/*'] } }, { subject: 'deployer' }];
  assert.equal(identityProblem(rules, id({ repository: 'org/app', ref: 'refs/tags/v1' })), null);
  assert.equal(identityProblem(rules, { kind: 'registry-token', subject: 'deployer', claims: {} }), null);
  const refused = identityProblem(rules, id({ repository: 'org/other', ref: 'refs/heads/dev' }));
  assert.match(refused!, /claim ref = "refs\/heads\/dev" does not match, claim repository = "org\/other" does not match/);
  assert.match(identityProblem(rules, id({ repository: { nested: 1 }, ref: 'refs/heads/main' }))!, /claim repository is missing/);
  assert.match(identityProblem([{ kind: 'oidc' }], { kind: 'registry-token', subject: 's', claims: {} })!, /the caller is registry-token, not oidc/);
  assert.equal(identityProblem([{ claims: { run_attempt: '1', fork: 'false' } }], id({ run_attempt: 1, fork: false })), null, 'numbers and booleans as text');
});

test('tag patterns', () => {
  assert.ok(tagAllowed(undefined, 'anything'));
  assert.ok(tagAllowed(['v*', 'latest'], 'latest'));
  assert.ok(!tagAllowed(['v*', 'latest'], 'nightly'));
});

const root = (targetsKeys: string[]): RootSigned =>
  ({ _type: 'Root', version: 1, keys: {}, roles: { targets: { keyids: targetsKeys, threshold: 1 } } }) as unknown as RootSigned;
const targets = (roles: { name: string; keyids: string[]; paths?: string[] }[]): TargetsSigned =>
  ({
    _type: 'Targets',
    version: 3,
    targets: {},
    delegations: { keys: {}, roles: roles.map((r) => ({ threshold: 1, paths: [''], ...r })) },
  }) as unknown as TargetsSigned;

test('roles: targets/NAME and targets/releases where they list the key and cover the tag; targets where the key is the repository key', () => {
  const keys = new Set(['k1']);
  const both = signerRoles(
    'ci',
    'v1',
    root(['owner']),
    targets([
      { name: 'targets/ci', keyids: ['k1'] },
      { name: 'targets/releases', keyids: ['owner', 'k1'] },
      { name: 'targets/other', keyids: ['k1'] },
    ]),
    keys,
  );
  assert.deepEqual(both, {
    roles: [
      { role: 'targets/ci', keyIds: ['k1'] },
      { role: 'targets/releases', keyIds: ['k1'] },
    ],
    problem: null,
  });
  assert.deepEqual(signerRoles('ci', 'v1', root(['k1']), targets([]), keys).roles, [{ role: 'targets', keyIds: ['k1'] }]);
  const narrowed = signerRoles('ci', 'v1', root(['owner']), targets([{ name: 'targets/ci', keyids: ['k1'], paths: ['prod-'] }]), keys);
  assert.match(narrowed.problem!, /targets\/ci may not sign v1/);
  const notListed = signerRoles('ci', 'v1', root(['owner']), targets([{ name: 'targets/ci', keyids: ['old'] }]), keys);
  assert.match(notListed.problem!, /targets\/ci does not list the signer's key/);
  assert.match(signerRoles('ci', 'v1', root(['owner']), targets([]), keys).problem!, /does not delegate to signer ci/);
});

test('the next version keeps the other tags, goes above every stored version and sets a fresh expiry', () => {
  const current = { ...targets([]), targets: { old: { hashes: { sha256: 'AA==' }, length: 1 } } } as unknown as TargetsSigned;
  const next = nextTargetsWith(current, 7, 'v1', targetEntry('ab'.repeat(32), 5), Date.UTC(2026, 0, 1));
  assert.equal(next.version, 8);
  assert.deepEqual(Object.keys(next.targets!).sort(), ['old', 'v1']);
  assert.equal((next as unknown as { expires: string }).expires, '2028-12-31T00:00:00Z');
  assert.equal(nextTargetsWith(null, 0, 'v1', targetEntry('ab'.repeat(32), 5), 0).version, 1);
  assert.equal(Object.keys(current.targets!).length, 1, 'the current file is not changed');
});
