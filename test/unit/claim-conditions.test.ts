/**
 * Claim conditions of OIDC identities (src/auth/claim-conditions.ts): exact and glob matches,
 * `*` within one path segment and `**` across them, how non-string claims match, every
 * condition must hold, and the shape a condition must have.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { claimConditionSchema, claimConditionsSchema, describeCondition, globMatch, matchClaims } from '../../src/auth/claim-conditions.js';

describe('globMatch', () => {
  const cases: [string, string, boolean][] = [
    ['refs/heads/main', 'refs/heads/main', true],
    ['refs/heads/main', 'refs/heads/mainx', false],
    ['refs/heads/main', 'xrefs/heads/main', false],
    ['refs/heads/*', 'refs/heads/main', true],
    ['refs/heads/*', 'refs/heads/', true],
    ['refs/heads/*', 'refs/heads/feature/x', false],
    ['refs/heads/**', 'refs/heads/feature/x', true],
    ['refs/heads/**', 'refs/heads/main', true],
    ['refs/tags/v*', 'refs/tags/v1.2.3', true],
    ['refs/tags/v*', 'refs/tags/1.2.3', false],
    ['octo-org/*', 'octo-org/app', true],
    ['octo-org/*', 'octo-org/app/sub', false],
    ['octo-org/*', 'other-org/app', false],
    ['*/app', 'octo-org/app', true],
    ['**/app', 'a/b/c/app', true],
    ['**/app', 'app', false],
    ['**', '', true],
    ['*', '', true],
    ['*', 'a/b', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy/c', false],
    ['a**c', 'ab/c', true],
    ['.github/workflows/release.yml@refs/heads/*', '.github/workflows/release.yml@refs/heads/main', true],
    ['Main', 'main', false],
    ['a.c', 'abc', false],
    ['(a|b)', '(a|b)', true],
    ['***', 'x/y', true],
  ];
  for (const [pattern, value, expected] of cases) {
    test(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(value)}`, () => {
      assert.equal(globMatch(pattern, value), expected);
    });
  }

  test('runs in bounded time on a pattern that makes backtracking matchers explode', () => {
    const pattern = '*a'.repeat(30) + 'b';
    const value = 'a'.repeat(4000);
    const start = performance.now();
    assert.equal(globMatch(pattern, value), false);
    assert.ok(performance.now() - start < 2000);
  });
});

describe('globMatch against a reference regular expression', () => {
  /** The documented meaning, as a regular expression (fine for short patterns). */
  const reference = (pattern: string) =>
    new RegExp(
      '^' +
        pattern
          .split(/(\*+)/)
          .map((part) => (part.startsWith('**') ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('') +
        '$',
      's',
    );
  const text = (chars: string[], max: number) => fc.array(fc.constantFrom(...chars), { maxLength: max }).map((a) => a.join(''));

  test('agrees on random patterns and values over a small alphabet', () => {
    fc.assert(
      fc.property(text(['a', 'b', '/', '*', '.'], 8), text(['a', 'b', '/', '.'], 10), (pattern, value) => {
        assert.equal(globMatch(pattern, value), reference(pattern).test(value), `${pattern} ~ ${value}`);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('matchClaims', () => {
  const claims = {
    repository: 'octo-org/app',
    ref: 'refs/heads/main',
    workflow: 'release',
    run_attempt: 2,
    ref_protected: true,
    groups: ['dev', 'release-managers'],
    nested: { a: 'b' },
    empty: null,
  };

  test('every condition holds: ok', () => {
    assert.deepEqual(
      matchClaims(claims, [
        { claim: 'repository', equals: 'octo-org/app' },
        { claim: 'ref', glob: 'refs/heads/*' },
        { claim: 'workflow', glob: 'rel*' },
      ]),
      { ok: true },
    );
    assert.deepEqual(matchClaims(claims, []), { ok: true });
  });

  test('the conditions that fail come back, in order', () => {
    const result = matchClaims(claims, [
      { claim: 'repository', equals: 'octo-org/other' },
      { claim: 'ref', glob: 'refs/heads/*' },
      { claim: 'workflow', equals: 'build' },
    ]);
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.failed.map(describeCondition), ['repository equals "octo-org/other"', 'workflow equals "build"']);
  });

  test('exact matches are exact: no prefix, no case folding, no glob characters', () => {
    assert.equal(matchClaims(claims, [{ claim: 'repository', equals: 'octo-org/ap' }]).ok, false);
    assert.equal(matchClaims(claims, [{ claim: 'repository', equals: 'Octo-org/app' }]).ok, false);
    assert.equal(matchClaims(claims, [{ claim: 'repository', equals: 'octo-org/*' }]).ok, false);
  });

  test('numbers and booleans match their JSON text; arrays match on any string element', () => {
    assert.equal(matchClaims(claims, [{ claim: 'run_attempt', equals: '2' }]).ok, true);
    assert.equal(matchClaims(claims, [{ claim: 'ref_protected', equals: 'true' }]).ok, true);
    assert.equal(matchClaims(claims, [{ claim: 'groups', equals: 'release-managers' }]).ok, true);
    assert.equal(matchClaims(claims, [{ claim: 'groups', glob: 'release-*' }]).ok, true);
    assert.equal(matchClaims(claims, [{ claim: 'groups', equals: 'admins' }]).ok, false);
  });

  test('a missing, null or object claim never matches, not even **', () => {
    for (const claim of ['missing', 'empty', 'nested', 'toString', '__proto__']) {
      assert.equal(matchClaims(claims, [{ claim, glob: '**' }]).ok, false, claim);
    }
  });
});

describe('claimConditionSchema', () => {
  test('a condition has a claim and exactly one of equals or glob', () => {
    assert.ok(claimConditionSchema.safeParse({ claim: 'ref', equals: 'refs/heads/main' }).success);
    assert.ok(claimConditionSchema.safeParse({ claim: 'ref', glob: 'refs/heads/*' }).success);
    assert.ok(!claimConditionSchema.safeParse({ claim: 'ref' }).success);
    assert.ok(!claimConditionSchema.safeParse({ claim: 'ref', equals: 'a', glob: 'b' }).success);
    assert.ok(!claimConditionSchema.safeParse({ claim: '', equals: 'a' }).success);
    assert.ok(!claimConditionSchema.safeParse({ claim: 'ref', equals: 'a', regex: '.*' }).success);
    assert.ok(!claimConditionSchema.safeParse({ claim: 'ref', glob: 'x'.repeat(2000) }).success);
    assert.ok(!claimConditionsSchema.safeParse(Array.from({ length: 100 }, () => ({ claim: 'a', equals: 'b' }))).success);
  });
});
