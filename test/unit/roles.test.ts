import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareRoleDepth, isDelegationRole, isTargetsRole, isValidRole, parentRole } from '../../src/tuf/notary/roles.js';

test('the four base roles are valid', () => {
  for (const role of ['root', 'targets', 'snapshot', 'timestamp']) assert.ok(isValidRole(role), role);
});

test('delegations under targets/ are valid, nested ones too', () => {
  for (const role of ['targets/releases', 'targets/a/b', 'targets/qa-team_2', 'targets/a/b/c/d']) {
    assert.ok(isValidRole(role), role);
    assert.ok(isDelegationRole(role), role);
  }
});

test('a delegation of 255 characters is valid, one of 256 is not', () => {
  const name = (length: number) => 'targets/' + 'x'.repeat(length - 'targets/'.length);
  assert.ok(isValidRole(name(255)));
  assert.equal(isValidRole(name(256)), false);
  assert.equal(isValidRole(name(300)), false);
});

test('unclean, upper-case, spaced, wildcard and unknown names are invalid', () => {
  for (const role of [
    'targets/',
    'targets//x',
    'targets/x/',
    'targets/../x',
    'targets/./x',
    'targets/..',
    'targets/X',
    'targets/a b',
    'targets/*',
    'targets/a.b',
    'targets\\x',
    'foo',
    'Root',
    'TARGETS',
    'root/x',
    'snapshot/x',
    '/targets/x',
    '',
  ]) {
    assert.equal(isValidRole(role), false, JSON.stringify(role));
  }
});

test('isTargetsRole covers targets and delegations only', () => {
  assert.ok(isTargetsRole('targets'));
  assert.ok(isTargetsRole('targets/releases'));
  for (const role of ['root', 'snapshot', 'timestamp', 'targets/', 'foo']) assert.equal(isTargetsRole(role), false, role);
});

test('parentRole drops the last segment', () => {
  assert.equal(parentRole('targets/releases'), 'targets');
  assert.equal(parentRole('targets/a/b'), 'targets/a');
});

test('compareRoleDepth orders parents before children, then by name', () => {
  const roles = ['targets/b', 'targets/a/z', 'targets', 'targets/a', 'targets/a/b/c', 'targets/a/b'];
  assert.deepEqual([...roles].sort(compareRoleDepth), ['targets', 'targets/a', 'targets/b', 'targets/a/b', 'targets/a/z', 'targets/a/b/c']);
});
