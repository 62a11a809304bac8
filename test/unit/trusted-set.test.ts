/**
 * The trusted set: a repository built with the test kit is walked from its root down to a
 * delegation, and every way the walk must refuse is tried once, each with its stable code.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TrustError, TrustedSet, type TrustErrorCode } from '../../src/tuf/notary/trusted-set.js';
import {
  certKey,
  ecdsaKey,
  ed25519Key,
  inDays,
  metaOf,
  rootDoc,
  signFile,
  snapshotDoc,
  targetFile,
  targetsDoc,
  type RootSpec,
  type TestKey,
} from '../support/tuf-kit.js';

const GUN = 'registry.example.com/trusted/app';
const NOW = Date.now();

function timestampDoc(snapshot: Buffer, opts: { version?: number; expires?: string } = {}) {
  return { _type: 'Timestamp', expires: opts.expires ?? inDays(14), meta: { snapshot: metaOf(snapshot) }, version: opts.version ?? 1 };
}

interface Repo {
  spec: RootSpec;
  root: Buffer;
  targets: Buffer;
  release: Buffer;
  qa: Buffer;
  snapshot: Buffer;
  timestamp: Buffer;
  keys: { root: TestKey; targets: TestKey; snapshot: TestKey; timestamp: TestKey; ci: TestKey; qa: TestKey };
}

/** targets delegates `targets/releases` (paths: `v`) to CI, and `targets/releases/qa` (`v1`) to QA. */
function buildRepo(overrides: { rootExpires?: string; timestampExpires?: string } = {}): Repo {
  const keys = { root: certKey({ commonName: GUN }), targets: ecdsaKey(), snapshot: ecdsaKey(), timestamp: ed25519Key(), ci: ecdsaKey(), qa: ecdsaKey() };
  const spec: RootSpec = {
    root: [keys.root],
    targets: [keys.targets],
    snapshot: [keys.snapshot],
    timestamp: [keys.timestamp],
    ...(overrides.rootExpires ? { expires: overrides.rootExpires } : {}),
  };
  const root = signFile(rootDoc(spec), [keys.root]);
  const targets = signFile(
    targetsDoc({ targets: { latest: targetFile('by targets') }, delegations: [{ name: 'targets/releases', keys: [keys.ci], paths: ['v'] }] }),
    [keys.targets],
  );
  const release = signFile(
    targetsDoc({
      targets: { 'v1.0': targetFile('release 1.0'), 'v2.0': targetFile('release 2.0'), latest: targetFile('outside the paths') },
      delegations: [{ name: 'targets/releases/qa', keys: [keys.qa], paths: ['v1'] }],
    }),
    [keys.ci],
  );
  const qa = signFile(targetsDoc({ targets: { 'v1.0': targetFile('release 1.0'), 'v2.0': targetFile('qa would like v2 too') } }), [keys.qa]);
  const snapshot = signFile(snapshotDoc({ files: { root, targets, 'targets/releases': release, 'targets/releases/qa': qa } }), [keys.snapshot]);
  const timestamp = signFile(timestampDoc(snapshot, overrides.timestampExpires ? { expires: overrides.timestampExpires } : {}), [keys.timestamp]);
  return { spec, root, targets, release, qa, snapshot, timestamp, keys };
}

function refuses(code: TrustErrorCode, fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TrustError, `not a TrustError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function walk(repo: Repo, set = TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW })): TrustedSet {
  set.updateTimestamp(repo.timestamp);
  set.updateSnapshot(repo.snapshot);
  set.updateTargets('targets', repo.targets);
  set.updateTargets('targets/releases', repo.release);
  set.updateTargets('targets/releases/qa', repo.qa);
  return set;
}

describe('a repository walked from its root', () => {
  const repo = buildRepo();

  test('every role loads; targets come with the role that signs them', () => {
    const set = walk(repo);
    assert.equal(set.root.signed.version, 1);
    assert.equal(set.timestamp?.signed.version, 1);
    assert.deepEqual(
      set.delegationsOf('targets').map((d) => d.name),
      ['targets/releases'],
    );
    const v1 = set.targetOf('targets/releases', 'v1.0');
    assert.deepEqual(v1 && { role: v1.role, length: v1.length, sha256: v1.hashes['sha256'] }, {
      role: 'targets/releases',
      length: 11,
      sha256: targetFile('release 1.0').hashes.sha256,
    });
    assert.deepEqual(
      set.signersOf('v1.0').map((t) => t.role),
      ['targets/releases', 'targets/releases/qa'],
    );
    assert.deepEqual(
      set.signersOf('latest').map((t) => t.role),
      ['targets'],
    );
  });

  test('a delegation only narrows: names outside its paths, at any level, are not signed by it', () => {
    const set = walk(repo);
    assert.equal(set.targetOf('targets/releases', 'latest'), null, 'releases may only sign v*');
    assert.equal(set.targetOf('targets/releases/qa', 'v2.0'), null, 'qa may only sign v1*');
    assert.deepEqual(
      set.signersOf('v2.0').map((t) => t.role),
      ['targets/releases'],
    );
    assert.equal(set.targetOf('targets', 'nothing'), null);
  });

  test('a pinned root from another repository (CN ≠ GUN) is not trusted', () => {
    refuses('THRESHOLD', () => TrustedSet.fromTrustedRoot(repo.root, { gun: 'registry.example.com/other', nowMs: NOW }), /does not match/);
  });

  test('a root not signed by its own root key is not trusted', () => {
    const forged = signFile(rootDoc(repo.spec), [ecdsaKey()]);
    refuses('THRESHOLD', () => TrustedSet.fromTrustedRoot(forged, { gun: GUN, nowMs: NOW }), /0 valid signatures from its own root keys, 1 needed/);
  });

  test('bytes that are not a root are MALFORMED', () => {
    refuses('MALFORMED', () => TrustedSet.fromTrustedRoot(Buffer.from('{"signed":'), { gun: GUN, nowMs: NOW }));
    refuses('MALFORMED', () => TrustedSet.fromTrustedRoot(repo.targets, { gun: GUN, nowMs: NOW }));
  });
});

describe('root rotation', () => {
  const repo = buildRepo();
  const newRoot = certKey({ commonName: GUN });
  const v2Spec: RootSpec = { ...repo.spec, version: 2, root: [newRoot] };

  test('v2 signed by the old and the new root key is followed', () => {
    const set = TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW });
    set.updateRoot(signFile(rootDoc(v2Spec), [repo.keys.root, newRoot]));
    assert.equal(set.root.signed.version, 2);
  });

  test('v2 signed by the new key alone is refused: the trusted root never agreed', () => {
    const set = TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW });
    refuses('THRESHOLD', () => set.updateRoot(signFile(rootDoc(v2Spec), [newRoot])), /trusted root v1's keys/);
  });

  test('v2 signed by the old key alone is refused: the new root keys must agree too', () => {
    const set = TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW });
    refuses('THRESHOLD', () => set.updateRoot(signFile(rootDoc(v2Spec), [repo.keys.root])), /its own root keys/);
  });

  test('skipping a version, or repeating one, is refused', () => {
    const set = TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW });
    refuses('ROOT_VERSION', () => set.updateRoot(signFile(rootDoc({ ...v2Spec, version: 3 }), [repo.keys.root, newRoot])), /version 3 where 2/);
    refuses('ROOT_VERSION', () => set.updateRoot(repo.root));
  });

  test('an expired trusted root may be rotated away from; the root in force must be fresh', () => {
    const stale = buildRepo({ rootExpires: new Date(NOW - 86400_000).toISOString() });
    const set = TrustedSet.fromTrustedRoot(stale.root, { gun: GUN, nowMs: NOW });
    refuses('EXPIRED', () => set.checkRootFresh());
    refuses('EXPIRED', () => set.updateTimestamp(stale.timestamp), /^root: expired/);
    const fresh = signFile(rootDoc({ ...stale.spec, version: 2, expires: inDays(365) }), [stale.keys.root]);
    set.updateRoot(fresh);
    set.checkRootFresh();
  });

  test('after the timestamp is loaded, roots can no longer change', () => {
    const set = TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW });
    set.updateTimestamp(repo.timestamp);
    refuses('ORDER', () => set.updateRoot(signFile(rootDoc(v2Spec), [repo.keys.root, newRoot])));
  });
});

describe('timestamp and snapshot', () => {
  const repo = buildRepo();
  const start = (known = {}) => TrustedSet.fromTrustedRoot(repo.root, { gun: GUN, nowMs: NOW, known });

  test('a timestamp signed by another key is refused', () => {
    refuses('THRESHOLD', () => start().updateTimestamp(signFile(timestampDoc(repo.snapshot), [ecdsaKey()])), /root's timestamp keys/);
  });

  test('an expired timestamp is a freeze: refused', () => {
    const frozen = signFile(timestampDoc(repo.snapshot, { expires: new Date(NOW - 1000).toISOString() }), [repo.keys.timestamp]);
    refuses('EXPIRED', () => start().updateTimestamp(frozen));
  });

  test('versions older than those trusted in an earlier run are a rollback', () => {
    refuses('ROLLBACK', () => start({ timestamp: 2 }).updateTimestamp(repo.timestamp), /version 1 is older than the trusted version 2/);
    const set = start({ snapshot: 5 });
    set.updateTimestamp(repo.timestamp);
    refuses('ROLLBACK', () => set.updateSnapshot(repo.snapshot));
    const t = start({ targets: { 'targets/releases': 3 } });
    t.updateTimestamp(repo.timestamp);
    t.updateSnapshot(repo.snapshot);
    t.updateTargets('targets', repo.targets);
    refuses('ROLLBACK', () => t.updateTargets('targets/releases', repo.release));
  });

  test('a snapshot other than the one the timestamp lists is mix-and-match: refused', () => {
    const set = start();
    set.updateTimestamp(repo.timestamp);
    const other = signFile(snapshotDoc({ version: 2, files: { root: repo.root, targets: repo.targets } }), [repo.keys.snapshot]);
    refuses('HASH_MISMATCH', () => set.updateSnapshot(other), /the timestamp/);
  });

  test('a snapshot that does not list the root in force is refused', () => {
    const otherRoot = signFile(rootDoc({ ...repo.spec, expires: inDays(100) }), [repo.keys.root]);
    const snapshot = signFile(snapshotDoc({ files: { root: otherRoot, targets: repo.targets } }), [repo.keys.snapshot]);
    const set = start();
    set.updateTimestamp(signFile(timestampDoc(snapshot), [repo.keys.timestamp]));
    refuses('HASH_MISMATCH', () => set.updateSnapshot(snapshot), /^root: not the file the snapshot lists/);
  });

  test('snapshot before timestamp is out of order', () => {
    refuses('ORDER', () => start().updateSnapshot(repo.snapshot));
  });
});

describe('targets and delegations', () => {
  const repo = buildRepo();
  const upToSnapshot = (r: Repo = repo) => {
    const set = TrustedSet.fromTrustedRoot(r.root, { gun: GUN, nowMs: NOW });
    set.updateTimestamp(r.timestamp);
    set.updateSnapshot(r.snapshot);
    return set;
  };

  test('targets whose bytes differ from what the snapshot lists are refused', () => {
    const tampered = Buffer.from(repo.targets.toString().replace('"latest"', '"lateST"'));
    assert.notDeepEqual(tampered, repo.targets);
    refuses('HASH_MISMATCH', () => upToSnapshot().updateTargets('targets', tampered));
  });

  test('a role the snapshot does not list is refused', () => {
    const set = upToSnapshot();
    set.updateTargets('targets', repo.targets);
    refuses('NOT_LISTED', () => set.updateTargets('targets/unlisted', repo.qa));
  });

  test('a delegation its parent does not name is refused, as is one signed by the wrong key', () => {
    const set = upToSnapshot();
    refuses('ORDER', () => set.updateTargets('targets/releases', repo.release), /parent targets must be loaded/);
    set.updateTargets('targets', repo.targets);
    // Signed by QA where targets delegates releases to CI.
    const bySomeoneElse = signFile(targetsDoc({ targets: { 'v1.0': targetFile('release 1.0') } }), [repo.keys.qa]);
    const r = buildRepoWith(repo, { release: bySomeoneElse });
    const set2 = upToSnapshot(r);
    set2.updateTargets('targets', r.targets);
    refuses('THRESHOLD', () => set2.updateTargets('targets/releases', r.release), /keys targets delegates to it/);
  });

  test('a threshold of 2 is not met by one key signing twice', () => {
    const r = buildRepo();
    const twice = signFile(rootDoc({ ...r.spec, targetsThreshold: 2 }), [r.keys.root]);
    const targets = signFile(targetsDoc({}), [r.keys.targets, r.keys.targets]);
    const snapshot = signFile(snapshotDoc({ files: { root: twice, targets } }), [r.keys.snapshot]);
    const set = TrustedSet.fromTrustedRoot(twice, { gun: GUN, nowMs: NOW });
    set.updateTimestamp(signFile(timestampDoc(snapshot), [r.keys.timestamp]));
    set.updateSnapshot(snapshot);
    refuses('THRESHOLD', () => set.updateTargets('targets', targets), /1 valid signatures from the root's targets keys, 2 needed/);
  });

  test('an expired targets file is refused', () => {
    const r = buildRepo();
    const targets = signFile(targetsDoc({ expires: new Date(NOW - 1000).toISOString() }), [r.keys.targets]);
    const rebuilt = buildRepoWith(r, { targets });
    refuses('EXPIRED', () => upToSnapshot(rebuilt).updateTargets('targets', rebuilt.targets));
  });
});

/** The same repository with some files replaced; snapshot and timestamp re-signed over them. */
function buildRepoWith(repo: Repo, files: { targets?: Buffer; release?: Buffer }): Repo {
  const targets = files.targets ?? repo.targets;
  const release = files.release ?? repo.release;
  const snapshot = signFile(snapshotDoc({ files: { root: repo.root, targets, 'targets/releases': release, 'targets/releases/qa': repo.qa } }), [
    repo.keys.snapshot,
  ]);
  const timestamp = signFile(timestampDoc(snapshot), [repo.keys.timestamp]);
  return { ...repo, targets, release, snapshot, timestamp };
}
