/**
 * The update rules of notary-protocol.md §2, exercised through `validateUpdate` directly: every
 * rule has an accepted and a refused case, and refusals are checked for their error kind and
 * a meaningful part of their message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, sign } from 'node:crypto';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { OldVersionError, ValidationError, type ValidationErrorName } from '../../src/tuf/notary/errors.js';
import type { ServerSigningKey } from '../../src/tuf/notary/generate.js';
import { loadVerifierKey, tufKeyId } from '../../src/tuf/core/keys.js';
import { parseSignedFile, type SignedFile } from '../../src/tuf/notary/metadata.js';
import { isTargetsRole } from '../../src/tuf/notary/roles.js';
import { meetsThreshold } from '../../src/tuf/core/signatures.js';
import { parseRfc3339 } from '../../src/tuf/core/time.js';
import {
  checkVersions,
  validateUpdate,
  type NewFile,
  type RepositoryState,
  type UpdateOptions,
  type UpdatePlan,
} from '../../src/tuf/notary/validate-update.js';
import { generateServerKey, signingKey } from '../../src/signing/server-key.js';
import {
  certKey,
  ecdsaKey,
  inDays,
  metaOf,
  rootDoc,
  rsaKey,
  selfSignedCertificate,
  serverKey,
  signatureFor,
  signFile,
  snapshotDoc,
  targetFile,
  targetsDoc,
  type DelegationSpec,
  type RootSpec,
  type TestKey,
} from '../support/tuf-kit.js';

// ---------------------------------------------------------------------------------------------
// Keys, documents and a stored-repository helper

const GUN = 'docker.io/signet/app';
const DAY = 86_400_000;
const NOW = Date.now();
const OPTS: UpdateOptions = { gun: GUN, nowMs: NOW, snapshotExpiryMs: 3 * 365 * DAY, timestampExpiryMs: 14 * DAY };

interface ServerPair {
  signing: ServerSigningKey;
  pub: TestKey;
}

/** A key the server holds (private side) and the public key a client puts in the root. */
function serverPair(role: 'snapshot' | 'timestamp', alg: 'ed25519' | 'ecdsa' = 'ed25519'): ServerPair {
  const g = generateServerKey(alg);
  return {
    signing: signingKey(g.keyId, role, g.keytype, g.privateDer),
    pub: serverKey({ keytype: g.keytype, keyval: { public: g.publicKey } }),
  };
}

const ROOT = certKey({ commonName: GUN });
const ROOT2 = certKey({ commonName: GUN });
const TARGETS = ecdsaKey();
const SNAPSHOT = ecdsaKey(); // a client-held snapshot key
const OTHER = ecdsaKey();
const RELEASES = ecdsaKey();
const TS = serverPair('timestamp');
const SNAP = serverPair('snapshot', 'ecdsa');
const SERVER_KEYS: ServerSigningKey[] = [TS.signing, SNAP.signing];

const EMPTY: RepositoryState = { root: null, snapshot: null, targets: new Map(), latestVersions: new Map() };

/** Root spec of a repository whose snapshot key the server holds. */
function spec(over: Partial<RootSpec> = {}): RootSpec {
  return { root: [ROOT], targets: [TARGETS], snapshot: [SNAP.pub], timestamp: [TS.pub], ...over };
}

/** Root spec of a repository whose client signs snapshots. */
const clientSpec = (over: Partial<RootSpec> = {}) => spec({ snapshot: [SNAPSHOT], ...over });

const upload = (role: string, doc: object, signers: TestKey[], extra: object[] = []): SignedFile => parseSignedFile(role, signFile(doc, signers, extra));

function rootFile(s: RootSpec, signers: TestKey[] = s.root, mutate?: (doc: any) => void): SignedFile {
  const doc = rootDoc(s);
  mutate?.(doc);
  return upload('root', doc, signers);
}

const targets = (opts: Parameters<typeof targetsDoc>[0] = {}, signers: TestKey[] = [TARGETS]) => upload('targets', targetsDoc(opts), signers);

const delegating = (delegations: DelegationSpec[], over: Parameters<typeof targetsDoc>[0] = {}) =>
  upload('targets', targetsDoc({ ...over, delegations }), [TARGETS]);

const withReleases = (over: Parameters<typeof targetsDoc>[0] = {}) => delegating([{ name: 'targets/releases', keys: [RELEASES] }], over);

const releases = (targetNames: string[] = ['app'], signers: TestKey[] = [RELEASES], version = 1) =>
  upload('targets/releases', targetsDoc({ version, targets: Object.fromEntries(targetNames.map((n) => [n, targetFile(n)])) }), signers);

function clientSnapshot(files: SignedFile[], opts: { version?: number; expires?: string } = {}, signers: TestKey[] = [SNAPSHOT]): SignedFile {
  return upload('snapshot', snapshotDoc({ ...opts, files: Object.fromEntries(files.map((f) => [f.role, f.bytes])) }), signers);
}

function update(
  uploads: SignedFile[],
  state: RepositoryState = EMPTY,
  serverKeys: readonly ServerSigningKey[] = SERVER_KEYS,
  opts: UpdateOptions = OPTS,
): UpdatePlan {
  return validateUpdate(uploads, state, serverKeys, opts);
}

/** The repository as storage holds it after `plan` was written on top of `state`. */
function store(state: RepositoryState, plan: UpdatePlan): RepositoryState {
  let root = state.root;
  let snapshot = state.snapshot;
  const targetsMap = new Map(state.targets);
  const latest = new Map(state.latestVersions);
  for (const f of plan.files) {
    const parsed = parseSignedFile(f.role, f.bytes);
    if (f.role === 'root') root = parsed;
    else if (f.role === 'snapshot') snapshot = parsed;
    else if (isTargetsRole(f.role)) targetsMap.set(f.role, parsed);
    latest.set(f.role, Math.max(latest.get(f.role) ?? 0, f.version));
  }
  return { root, snapshot, targets: targetsMap, latestVersions: latest };
}

function accept(uploads: SignedFile[], state: RepositoryState = EMPTY, serverKeys: readonly ServerSigningKey[] = SERVER_KEYS, opts: UpdateOptions = OPTS) {
  const plan = update(uploads, state, serverKeys, opts);
  return { plan, state: store(state, plan) };
}

/** A repository after a first accepted root + targets update (server-signed snapshot). */
const initRepo = (s: RootSpec = spec(), firstTargets: SignedFile = targets()) => accept([rootFile(s), firstTargets]).state;

/** A repository after a first accepted root + targets + client snapshot update. */
function initClientRepo(s: RootSpec = clientSpec()) {
  const root = rootFile(s);
  const tg = targets();
  return accept([root, tg, clientSnapshot([root, tg])]).state;
}

function fileOf(plan: UpdatePlan, role: string): NewFile {
  const f = plan.files.find((x) => x.role === role);
  assert.ok(f, `no ${role} in the plan`);
  return f;
}

const out = (plan: UpdatePlan, role: string) => parseSignedFile(role, fileOf(plan, role).bytes);
const rolesOf = (plan: UpdatePlan) => plan.files.map((f) => f.role);
const metaOfFile = (file: SignedFile) => (file.signed as any).meta as Record<string, unknown>;

function verifiedBy(file: SignedFile, keys: TestKey[], threshold = keys.length): boolean {
  const verifiers = new Map(keys.map((k) => [k.keyId, loadVerifierKey(k.keytype, k.publicB64, k.keyId)]));
  return meetsThreshold(file.message(), file.signatures, verifiers, threshold);
}

function refused(fn: () => unknown, kind: ValidationErrorName, message: RegExp): ValidationError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ValidationError, `expected a ValidationError, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  assert.match(caught.message, message);
  return caught;
}

function stale(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof OldVersionError, `expected an OldVersionError, got ${String(caught)}`);
  assert.match(caught.message, message);
}

// ---------------------------------------------------------------------------------------------
// New repositories and the server's timestamp

test('a new repository accepts root, targets and a client snapshot, passed through verbatim', () => {
  const root = rootFile(clientSpec());
  const tg = targets({ targets: { app: targetFile('v1') } });
  const snap = clientSnapshot([root, tg]);
  const plan = update([root, tg, snap]);
  assert.deepEqual(
    plan.files.map((f) => [f.role, f.version]),
    [
      ['root', 1],
      ['targets', 1],
      ['snapshot', 1],
      ['timestamp', 1],
    ],
  );
  assert.ok(fileOf(plan, 'root').bytes.equals(root.bytes));
  assert.ok(fileOf(plan, 'targets').bytes.equals(tg.bytes));
  assert.ok(fileOf(plan, 'snapshot').bytes.equals(snap.bytes));
  assert.deepEqual(plan.usedServerKeys, [TS.pub.keyId]);
});

test('a new repository accepts root and targets alone when the server holds the snapshot key', () => {
  const plan = update([rootFile(spec()), targets()]);
  assert.deepEqual(rolesOf(plan), ['root', 'targets', 'snapshot', 'timestamp']);
  assert.deepEqual(plan.usedServerKeys, [SNAP.pub.keyId, TS.pub.keyId]);
});

test('a new repository accepts a first root at version 2', () => {
  const plan = update([rootFile(spec({ version: 2 })), targets()]);
  assert.equal(fileOf(plan, 'root').version, 2);
});

test('a new repository refuses a first root at version 3', () => {
  refused(() => update([rootFile(spec({ version: 3 })), targets()]), 'ErrBadRoot', /Root modifications must increment the version\. Current 1, new 3/);
});

test('an update without a root to a repository with no stored root is ErrValidation', () => {
  refused(() => update([targets()]), 'ErrValidation', /no pre-existing root and no root provided in update/);
});

test('an uploaded timestamp is ignored: the server signs its own, numbered 1 then 2', () => {
  const fake = upload('timestamp', { _type: 'Timestamp', expires: inDays(14), meta: { snapshot: metaOf(Buffer.from('x')) }, version: 42 }, [OTHER]);
  const first = accept([rootFile(spec()), targets(), fake]);
  assert.deepEqual(rolesOf(first.plan), ['root', 'targets', 'snapshot', 'timestamp']);
  const ts1 = out(first.plan, 'timestamp');
  assert.ok(!ts1.bytes.equals(fake.bytes));
  assert.equal(ts1.type, 'Timestamp');
  assert.equal(ts1.version, 1);
  assert.deepEqual(
    ts1.signatures.map((s) => s.keyid),
    [TS.pub.keyId],
  );
  assert.ok(verifiedBy(ts1, [TS.pub]));
  assert.ok(!verifiedBy(ts1, [OTHER], 1));
  assert.deepEqual(metaOfFile(ts1), { snapshot: metaOf(fileOf(first.plan, 'snapshot').bytes) });

  const second = update([targets({ version: 2 }), fake], first.state);
  const ts2 = out(second, 'timestamp');
  assert.equal(ts2.version, 2);
  assert.ok(verifiedBy(ts2, [TS.pub]));
});

// ---------------------------------------------------------------------------------------------
// Root: structure

test('a root missing one of the four base roles is ErrBadRoot', () => {
  refused(() => update([rootFile(spec(), undefined, (d) => delete d.roles.timestamp), targets()]), 'ErrBadRoot', /root does not define the timestamp role/);
});

test('a root listing a key ID it does not define is ErrBadRoot', () => {
  const ghost = 'ab'.repeat(32);
  refused(
    () => update([rootFile(spec(), undefined, (d) => d.roles.targets.keyids.push(ghost)), targets()]),
    'ErrBadRoot',
    new RegExp(`lists key ${ghost} for targets but does not define it`),
  );
});

test('a root role with threshold 0 is ErrBadRoot', () => {
  refused(
    () => update([rootFile(spec(), undefined, (d) => (d.roles.snapshot.threshold = 0)), targets()]),
    'ErrBadRoot',
    /roles\.snapshot\.threshold: threshold must be at least 1/,
  );
});

test('a root whose _type is not "Root" is ErrBadRoot', () => {
  refused(() => update([rootFile(spec(), undefined, (d) => (d._type = 'root')), targets()]), 'ErrBadRoot', /_type/);
});

test('a root may list extra keys that no role uses', () => {
  const plan = update([rootFile(spec({ extraKeys: [OTHER, ROOT2] })), targets()]);
  assert.equal(fileOf(plan, 'root').version, 1);
});

// ---------------------------------------------------------------------------------------------
// Root: expiry and certificates

test('an expired root is ErrBadRoot', () => {
  refused(() => update([rootFile(spec({ expires: inDays(-1) })), targets()]), 'ErrBadRoot', /root expired at/);
});

test('root expiry is judged by opts.nowMs, not by the system clock', () => {
  const root = rootFile(spec({ expires: inDays(2) }));
  assert.equal(fileOf(update([root, targets()]), 'root').version, 1);
  refused(() => update([root, targets()], EMPTY, SERVER_KEYS, { ...OPTS, nowMs: NOW + 3 * DAY }), 'ErrBadRoot', /root expired at/);
});

test('a plain ecdsa root key is refused: root keys must be x509 certificates', () => {
  refused(
    () => update([rootFile(spec({ root: [ecdsaKey()] })), targets()]),
    'ErrBadRoot',
    /unable to retrieve valid leaf certificates.*root keys must be x509 certificates, not ecdsa/,
  );
});

test('a root certificate whose CN is not the GUN is refused', () => {
  const cert = certKey({ commonName: 'docker.io/signet/other' });
  refused(
    () => update([rootFile(spec({ root: [cert] })), targets()]),
    'ErrBadRoot',
    /unable to retrieve valid leaf certificates.*CN docker\.io\/signet\/other does not match docker\.io\/signet\/app/,
  );
});

test('a wildcard CN that is a prefix of the GUN is accepted, another prefix is not', () => {
  const wildcard = certKey({ commonName: 'docker.io/signet/*' });
  assert.equal(fileOf(update([rootFile(spec({ root: [wildcard] })), targets()]), 'root').version, 1);
  const elsewhere = certKey({ commonName: 'docker.io/other/*' });
  refused(() => update([rootFile(spec({ root: [elsewhere] })), targets()]), 'ErrBadRoot', /does not match/);
});

test('an expired root certificate is refused', () => {
  const cert = certKey({ commonName: GUN, notBefore: new Date(NOW - 400 * DAY), notAfter: new Date(NOW - DAY) });
  refused(() => update([rootFile(spec({ root: [cert] })), targets()]), 'ErrBadRoot', /is expired/);
});

test('a SHA-1 signed root certificate is refused', () => {
  const cert = certKey({ commonName: GUN, hash: 'sha1' });
  refused(() => update([rootFile(spec({ root: [cert] })), targets()]), 'ErrBadRoot', /SHA1/);
});

test('an RSA-2048 rsa-x509 root certificate is accepted', () => {
  const cert = certKey({ commonName: GUN, rsa: true });
  assert.equal(cert.keytype, 'rsa-x509');
  const root = rootFile(spec({ root: [cert] }));
  assert.equal(root.signatures[0]!.method, 'rsapss');
  assert.ok(fileOf(update([root, targets()]), 'root').bytes.equals(root.bytes));
});

test('a CA certificate cannot be a root key', () => {
  const ca = certKey({ commonName: GUN, isCA: true });
  refused(() => update([rootFile(spec({ root: [ca] })), targets()]), 'ErrBadRoot', /exactly one leaf/);
});

// ---------------------------------------------------------------------------------------------
// Root: versions and rotation

test('re-uploading a root at the stored version is an OldVersionError', () => {
  const state = initRepo();
  stale(() => update([rootFile(spec())], state), /^root version 1 is not newer than the stored version 1$/);
});

test('a root update that skips a version is ErrBadRoot', () => {
  const state = initRepo();
  refused(() => update([rootFile(spec({ version: 3 }))], state), 'ErrBadRoot', /must increment the version\. Current 1, new 3/);
});

test('a root update at version current+1 signed by the unchanged root key is accepted', () => {
  const state = initRepo();
  const next = accept([rootFile(spec({ version: 2 }))], state);
  assert.deepEqual(rolesOf(next.plan), ['root', 'snapshot', 'timestamp']);
  assert.equal(next.state.root?.version, 2);
});

test('a root rotation signed only by the new root key is refused (current trusted certificates)', () => {
  const state = initRepo();
  refused(
    () => update([rootFile(spec({ version: 2, root: [ROOT2] }), [ROOT2])], state),
    'ErrBadRoot',
    /failed to validate data with current trusted certificates/,
  );
});

test('a root rotation signed only by the old root key is refused (integrity of roots)', () => {
  const state = initRepo();
  refused(() => update([rootFile(spec({ version: 2, root: [ROOT2] }), [ROOT])], state), 'ErrBadRoot', /failed to validate integrity of roots/);
});

test('a root rotation signed by the old and the new key is accepted; the next needs only its predecessor', () => {
  const state = initRepo();
  const v2 = accept([rootFile(spec({ version: 2, root: [ROOT2], extraKeys: [ROOT] }), [ROOT, ROOT2])], state);
  assert.equal(v2.state.root?.version, 2);
  const root3 = certKey({ commonName: GUN });
  const v3 = accept([rootFile(spec({ version: 3, root: [root3] }), [ROOT2, root3])], v2.state);
  assert.equal(v3.state.root?.version, 3);
  // The key of two roots ago has no say any more.
  refused(() => update([rootFile(spec({ version: 4, root: [ROOT] }), [ROOT])], v3.state), 'ErrBadRoot', /current trusted certificates/);
});

test('an expired stored root can still be rotated away from', () => {
  const state = initRepo(spec({ expires: inDays(1) }));
  const later = { ...OPTS, nowMs: NOW + 2 * DAY };
  const next = update([rootFile(spec({ version: 2, root: [ROOT2] }), [ROOT, ROOT2])], state, SERVER_KEYS, later);
  assert.equal(fileOf(next, 'root').version, 2);
});

test('a root role with threshold 2 needs signatures from both certificates', () => {
  const a = certKey({ commonName: GUN });
  const b = certKey({ commonName: GUN });
  const s = spec({ root: [a, b], rootThreshold: 2 });
  refused(() => update([rootFile(s, [a]), targets()]), 'ErrBadRoot', /integrity of roots: .*signed by 2 /);
  assert.equal(fileOf(update([rootFile(s, [a, b]), targets()]), 'root').version, 1);
});

test('the same key signing twice does not reach a root threshold of 2', () => {
  const a = certKey({ commonName: GUN });
  const b = certKey({ commonName: GUN });
  const s = spec({ root: [a, b], rootThreshold: 2 });
  const root = rootFile(s, [a, a]);
  assert.equal(root.signatures.length, 2);
  refused(() => update([root, targets()]), 'ErrBadRoot', /integrity of roots/);
});

test('one certificate listed under two key IDs counts once towards the root threshold', () => {
  const a = certKey({ commonName: GUN });
  // The same certificate with a trailing blank line: another TUF key ID, the same certificate.
  const pem = Buffer.from(a.publicB64, 'base64').toString('latin1') + '\n';
  const twinB64 = Buffer.from(pem, 'latin1').toString('base64');
  const twin: TestKey = { ...a, publicB64: twinB64, keyId: tufKeyId(a.keytype, twinB64) };
  assert.notEqual(twin.keyId, a.keyId);
  const s = spec({ root: [a, twin], rootThreshold: 2 });
  refused(() => update([rootFile(s, [a, twin]), targets()]), 'ErrBadRoot', /integrity of roots/);
});

test('a root whose timestamp key the server does not hold is ErrBadRoot "no  timestamp keys exist on the server"', () => {
  const stranger = serverPair('timestamp');
  refused(() => update([rootFile(spec({ timestamp: [stranger.pub] })), targets()]), 'ErrBadRoot', /^no {2}timestamp keys exist on the server$/);
});

test('a timestamp threshold of 2 needs two server-held timestamp keys', () => {
  const ts2 = serverPair('timestamp', 'ecdsa');
  const s = spec({ timestamp: [TS.pub, ts2.pub], timestampThreshold: 2 });
  refused(() => update([rootFile(s), targets()]), 'ErrBadRoot', /no {2}timestamp keys exist on the server/);
  const plan = update([rootFile(s), targets()], EMPTY, [TS.signing, ts2.signing, SNAP.signing]);
  assert.ok(verifiedBy(out(plan, 'timestamp'), [TS.pub, ts2.pub], 2));
});

// ---------------------------------------------------------------------------------------------
// Targets

test('targets signed by a key the root does not list for targets is ErrBadTargets', () => {
  refused(() => update([rootFile(spec()), targets({}, [OTHER])]), 'ErrBadTargets', /^targets: fewer than 1 valid signatures/);
});

test('expired targets are ErrBadTargets, judged by opts.nowMs', () => {
  refused(() => update([rootFile(spec()), targets({ expires: inDays(-1) })]), 'ErrBadTargets', /targets expired at/);
  const tg = targets({ expires: inDays(10) });
  assert.equal(fileOf(update([rootFile(spec()), tg]), 'targets').version, 1);
  refused(() => update([rootFile(spec()), tg], EMPTY, SERVER_KEYS, { ...OPTS, nowMs: NOW + 11 * DAY }), 'ErrBadTargets', /targets expired at/);
});

test('targets edited after signing (still valid JSON) are ErrBadTargets', () => {
  const bytes = signFile(targetsDoc({ targets: { app: targetFile('v1') } }), [TARGETS]);
  const text = bytes.toString('utf8');
  const tampered = text.replace('"length":2', '"length":3');
  assert.notEqual(tampered, text);
  assert.equal(fileOf(update([rootFile(spec()), parseSignedFile('targets', bytes)]), 'targets').version, 1);
  refused(() => update([rootFile(spec()), parseSignedFile('targets', Buffer.from(tampered))]), 'ErrBadTargets', /targets: fewer than 1 valid signatures/);
});

test('a delegation entry that is not a direct child of its role is ErrBadTargets', () => {
  refused(
    () => update([rootFile(spec()), delegating([{ name: 'targets/a/b', keys: [RELEASES] }])]),
    'ErrBadTargets',
    /delegation "targets\/a\/b" is not a valid direct child role/,
  );
  refused(
    () => update([rootFile(spec()), delegating([{ name: 'targets/Releases', keys: [RELEASES] }])]),
    'ErrBadTargets',
    /delegation "targets\/Releases" is not a valid direct child role/,
  );
});

test('a delegation entry listing an undefined key ID is ErrBadTargets', () => {
  const doc: any = targetsDoc({ delegations: [{ name: 'targets/releases', keys: [RELEASES] }] });
  doc.delegations.keys = {};
  refused(
    () => update([rootFile(spec()), upload('targets', doc, [TARGETS])]),
    'ErrBadTargets',
    new RegExp(`delegation targets/releases lists undefined key ${RELEASES.keyId}`),
  );
});

test('a delegation listed twice is ErrBadTargets', () => {
  const doubled = delegating([
    { name: 'targets/releases', keys: [RELEASES] },
    { name: 'targets/releases', keys: [OTHER] },
  ]);
  refused(() => update([rootFile(spec()), doubled]), 'ErrBadTargets', /delegation targets\/releases is listed twice/);
});

test('a delegation with both paths and path_hash_prefixes is ErrBadTargets', () => {
  const doc: any = targetsDoc({ delegations: [{ name: 'targets/releases', keys: [RELEASES] }] });
  doc.delegations.roles[0].path_hash_prefixes = ['ab'];
  refused(
    () => update([rootFile(spec()), upload('targets', doc, [TARGETS])]),
    'ErrBadTargets',
    /delegation targets\/releases has both paths and path_hash_prefixes/,
  );
});

test('a delegation with threshold 0 is ErrBadTargets', () => {
  refused(
    () => update([rootFile(spec()), delegating([{ name: 'targets/releases', keys: [RELEASES], threshold: 0 }])]),
    'ErrBadTargets',
    /threshold must be at least 1/,
  );
});

test('a delegation signed by its key is accepted with its parent in the same upload', () => {
  const rel = releases();
  const parent = withReleases();
  const plan = update([rootFile(spec()), rel, parent]);
  assert.deepEqual(rolesOf(plan), ['root', 'targets', 'targets/releases', 'snapshot', 'timestamp']);
  assert.ok(fileOf(plan, 'targets/releases').bytes.equals(rel.bytes));
  assert.deepEqual(metaOfFile(out(plan, 'snapshot'))['targets/releases'], metaOf(rel.bytes));
});

test('a delegation signed by its key is accepted against the stored parent in a later update', () => {
  const state = initRepo(spec(), withReleases());
  const rel = releases();
  const plan = update([rel], state);
  assert.deepEqual(rolesOf(plan), ['targets/releases', 'snapshot', 'timestamp']);
  const meta = metaOfFile(out(plan, 'snapshot'));
  assert.deepEqual(meta['targets/releases'], metaOf(rel.bytes));
  assert.deepEqual(meta['targets'], metaOf(state.targets.get('targets')!.bytes));
});

test('a delegation signed by a key its parent does not list is ErrBadTargets', () => {
  const state = initRepo(spec(), withReleases());
  refused(() => update([releases(['app'], [OTHER])], state), 'ErrBadTargets', /^targets\/releases: fewer than 1 valid signatures/);
});

test('a delegation whose parent is neither uploaded nor stored is ErrBadTargets', () => {
  const state = initRepo();
  const orphan = upload('targets/a/b', targetsDoc({}), [RELEASES]);
  refused(() => update([orphan], state), 'ErrBadTargets', /targets\/a\/b: its parent role targets\/a does not exist/);
});

test('a delegation its parent does not delegate is ErrBadTargets', () => {
  const state = initRepo();
  refused(() => update([releases()], state), 'ErrBadTargets', /targets\/releases is not delegated by targets/);
});

test('a nested delegation targets/a/b is verified with the keys targets/a lists for it', () => {
  const a = ecdsaKey();
  const b = ecdsaKey();
  const top = delegating([{ name: 'targets/a', keys: [a] }]);
  const mid = upload('targets/a', targetsDoc({ delegations: [{ name: 'targets/a/b', keys: [b] }] }), [a]);
  const leaf = (signer: TestKey) => upload('targets/a/b', targetsDoc({ targets: { deep: targetFile('x') } }), [signer]);
  // Uploaded children-first: the validator orders parents before children.
  const plan = update([leaf(b), mid, rootFile(spec()), top]);
  assert.deepEqual(rolesOf(plan), ['root', 'targets', 'targets/a', 'targets/a/b', 'snapshot', 'timestamp']);
  refused(() => update([leaf(a), mid, rootFile(spec()), top]), 'ErrBadTargets', /^targets\/a\/b: fewer than 1 valid signatures/);
});

test('a delegation may only list targets inside its delegated paths', () => {
  const parent = delegating([{ name: 'targets/releases', keys: [RELEASES], paths: ['release/'] }]);
  const plan = update([rootFile(spec()), parent, releases(['release/v1', 'release/v2'])]);
  assert.equal(fileOf(plan, 'targets/releases').version, 1);
  refused(
    () => update([rootFile(spec()), parent, releases(['release/v1', 'beta/v1'])]),
    'ErrBadTargets',
    /targets\/releases: target "beta\/v1" is outside the paths delegated to targets\/releases/,
  );
});

test('delegated paths [""] allow every target name', () => {
  const parent = delegating([{ name: 'targets/releases', keys: [RELEASES], paths: [''] }]);
  const plan = update([rootFile(spec()), parent, releases(['anything', 'deep/er/name', ''])]);
  assert.equal(fileOf(plan, 'targets/releases').version, 1);
});

test('path_hash_prefixes admit only target names whose sha256 starts with a listed prefix', () => {
  const hex = (name: string) => createHash('sha256').update(name).digest('hex');
  const prefix = hex('inside').slice(0, 2);
  let outside = 'outside';
  for (let i = 0; hex(outside).startsWith(prefix); i++) outside = `outside-${i}`;
  const doc: any = targetsDoc({ delegations: [{ name: 'targets/releases', keys: [RELEASES] }] });
  delete doc.delegations.roles[0].paths;
  doc.delegations.roles[0].path_hash_prefixes = [prefix];
  const parent = upload('targets', doc, [TARGETS]);
  assert.equal(fileOf(update([rootFile(spec()), parent, releases(['inside'])]), 'targets/releases').version, 1);
  refused(() => update([rootFile(spec()), parent, releases(['inside', outside])]), 'ErrBadTargets', /is outside the paths delegated to targets\/releases/);
});

test('an rsa-x509 delegation key signs its delegation', () => {
  const cert = certKey({ commonName: 'targets/releases', rsa: true });
  const parent = delegating([{ name: 'targets/releases', keys: [cert] }]);
  const plan = update([rootFile(spec()), parent, releases(['app'], [cert])]);
  assert.equal(fileOf(plan, 'targets/releases').version, 1);
  refused(() => update([rootFile(spec()), parent, releases(['app'], [RELEASES])]), 'ErrBadTargets', /fewer than 1/);
});

test('delegation certificates are not expiry-checked, but a SHA-1 certificate cannot sign', () => {
  const expired = certKey({ commonName: 'x', notBefore: new Date(NOW - 400 * DAY), notAfter: new Date(NOW - DAY) });
  const parentExpired = delegating([{ name: 'targets/releases', keys: [expired] }]);
  assert.equal(fileOf(update([rootFile(spec()), parentExpired, releases(['app'], [expired])]), 'targets/releases').version, 1);
  const sha1 = certKey({ commonName: 'x', hash: 'sha1' });
  const parentSha1 = delegating([{ name: 'targets/releases', keys: [sha1] }]);
  refused(() => update([rootFile(spec()), parentSha1, releases(['app'], [sha1])]), 'ErrBadTargets', /targets\/releases: fewer than 1 valid signatures/);
});

test('an rsapkcs1v15 signature from an rsa key counts, whatever the case of the method name', () => {
  const rsa = rsaKey();
  const doc = targetsDoc({ targets: { app: targetFile('v1') } });
  const sig = (method: string) => ({
    keyid: rsa.keyId,
    method,
    sig: sign('sha256', canonicalJson(doc), { key: rsa.privateKey!, padding: constants.RSA_PKCS1_PADDING }).toString('base64'),
  });
  const root = rootFile(spec({ targets: [rsa] }));
  for (const method of ['rsapkcs1v15', 'RSAPKCS1V15']) {
    const tg = parseSignedFile('targets', signFile(doc, [], [sig(method)]));
    assert.equal(fileOf(update([root, tg]), 'targets').version, 1, method);
  }
  // The same PKCS#1 v1.5 bytes claimed as PSS do not verify.
  const asPss = parseSignedFile('targets', signFile(doc, [], [sig('rsapss')]));
  refused(() => update([root, asPss]), 'ErrBadTargets', /fewer than 1 valid signatures/);
});

test('a signature with a wrong or unknown method does not count', () => {
  const doc = targetsDoc({});
  const good = signatureFor(TARGETS, canonicalJson(doc));
  assert.equal(good.method, 'ecdsa');
  assert.equal(fileOf(update([rootFile(spec()), parseSignedFile('targets', signFile(doc, [], [good]))]), 'targets').version, 1);
  for (const method of ['eddsa', 'rsapss', 'ecdsa-sha256', 'bogus', '']) {
    const tg = parseSignedFile('targets', signFile(doc, [], [{ ...good, method }]));
    refused(() => update([rootFile(spec()), tg]), 'ErrBadTargets', /targets: fewer than 1 valid signatures/);
  }
});

// ---------------------------------------------------------------------------------------------
// Snapshot: uploaded by the client

test('a client snapshot whose root entry hashes another root is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const otherRoot = rootFile(clientSpec({ expires: inDays(100) }));
  const tg = targets();
  refused(() => update([root, tg, clientSnapshot([otherRoot, tg])]), 'ErrBadSnapshot', /snapshot entry for root: sha256 checksum mismatch/);
});

test('a client snapshot whose targets entry hashes other targets is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const tg = targets({ targets: { app: targetFile('v1') } });
  const otherTargets = targets({ targets: { app: targetFile('v2') } });
  refused(() => update([root, tg, clientSnapshot([root, otherTargets])]), 'ErrBadSnapshot', /snapshot entry for targets: sha256 checksum mismatch/);
});

test('a client snapshot that still lists the previous targets is refused (mix-and-match)', () => {
  const root = rootFile(clientSpec());
  const tg1 = targets();
  const state = accept([root, tg1, clientSnapshot([root, tg1])]).state;
  const tg2 = targets({ version: 2, targets: { app: targetFile('v2') } });
  refused(() => update([tg2, clientSnapshot([root, tg1], { version: 2 })], state), 'ErrBadSnapshot', /snapshot entry for targets: sha256 checksum mismatch/);
  const plan = update([tg2, clientSnapshot([root, tg2], { version: 2 })], state);
  assert.deepEqual(rolesOf(plan), ['targets', 'snapshot', 'timestamp']);
});

test('a client snapshot without a root entry is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const tg = targets();
  refused(() => update([root, tg, clientSnapshot([tg])]), 'ErrBadSnapshot', /snapshot has no sha256 for root/);
});

test('a client snapshot without a targets entry is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const tg = targets();
  refused(() => update([root, tg, clientSnapshot([root])]), 'ErrBadSnapshot', /snapshot has no sha256 for targets/);
});

test('a client snapshot without an entry for an uploaded delegation is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const tg = withReleases();
  const rel = releases();
  refused(() => update([root, tg, rel, clientSnapshot([root, tg])]), 'ErrBadSnapshot', /snapshot has no entry for targets\/releases/);
  assert.equal(fileOf(update([root, tg, rel, clientSnapshot([root, tg, rel])]), 'snapshot').version, 1);
});

test('a client snapshot signed by a key the root does not list for snapshot is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const tg = targets();
  refused(() => update([root, tg, clientSnapshot([root, tg], {}, [OTHER])]), 'ErrBadSnapshot', /snapshot: fewer than 1 valid signatures/);
});

test('an expired client snapshot is ErrBadSnapshot', () => {
  const root = rootFile(clientSpec());
  const tg = targets();
  refused(() => update([root, tg, clientSnapshot([root, tg], { expires: inDays(-1) })]), 'ErrBadSnapshot', /snapshot expired at/);
});

// ---------------------------------------------------------------------------------------------
// Snapshot: generated by the server

test('no snapshot and no server-held snapshot key listed in the root is ErrBadHierarchy missing "snapshot"', () => {
  // The server holds a snapshot key, but the root lists the client's.
  const e = refused(
    () => update([rootFile(clientSpec()), targets()]),
    'ErrBadHierarchy',
    /no snapshot was included in update and server does not hold current snapshot key for repository/,
  );
  assert.equal(e.missing, 'snapshot');
  assert.deepEqual(e.toDetail().Error['Missing'], 'snapshot');
  // The root lists the server's key, but the server no longer holds it.
  const e2 = refused(() => update([rootFile(spec()), targets()], EMPTY, [TS.signing]), 'ErrBadHierarchy', /snapshot key/);
  assert.equal(e2.missing, 'snapshot');
});

test('the generated snapshot hashes the exact uploaded bytes and is signed by the server snapshot key', () => {
  const root = rootFile(spec());
  const canonicalBytes = signFile(targetsDoc({ targets: { app: targetFile('v1') } }), [TARGETS]);
  // Whitespace in the envelope: the digest must cover these bytes, not a re-serialisation.
  const spaced = Buffer.from(canonicalBytes.toString('utf8').replace('{"signed":', '{ "signed" : ').replace(/}$/, ' }\n'));
  assert.notDeepEqual(spaced, canonicalBytes);
  const plan = update([root, parseSignedFile('targets', spaced)]);
  const snap = out(plan, 'snapshot');
  assert.equal(snap.type, 'Snapshot');
  assert.equal(snap.version, 1);
  assert.deepEqual(metaOfFile(snap), { root: metaOf(root.bytes), targets: metaOf(spaced) });
  assert.deepEqual(
    snap.signatures.map((s) => [s.keyid, s.method]),
    [[SNAP.pub.keyId, 'ecdsa']],
  );
  assert.ok(verifiedBy(snap, [SNAP.pub]));
  // The generated file is notary's envelope around the canonical `signed` bytes.
  assert.ok(snap.bytes.toString('utf8').startsWith(`{"signed":${snap.message().toString('utf8')},"signatures":[`));
});

test('a generated snapshot is previous version + 1 and keeps entries of roles not in the update', () => {
  const first = accept([rootFile(spec()), withReleases(), releases()]);
  const snap1 = first.state.snapshot!;
  assert.equal(snap1.version, 1);
  const tg2 = withReleases({ version: 2, targets: { top: targetFile('t') } });
  const second = accept([tg2], first.state);
  const snap2 = second.state.snapshot!;
  assert.equal(snap2.version, 2);
  const m1 = metaOfFile(snap1);
  const m2 = metaOfFile(snap2);
  assert.deepEqual(Object.keys(m2).sort(), ['root', 'targets', 'targets/releases']);
  assert.deepEqual(m2['targets/releases'], m1['targets/releases']);
  assert.deepEqual(m2['root'], m1['root']);
  assert.deepEqual(m2['targets'], metaOf(tg2.bytes));
  assert.notDeepEqual(m2['targets'], m1['targets']);
  assert.ok(verifiedBy(snap2, [SNAP.pub]));
});

test('a generated snapshot version is above the highest stored snapshot version', () => {
  const state = initRepo();
  const bumped = { ...state, latestVersions: new Map([...state.latestVersions, ['snapshot', 7]]) };
  assert.equal(out(update([targets({ version: 2 })], bumped), 'snapshot').version, 8);
});

// ---------------------------------------------------------------------------------------------
// Versions

test('targets at the stored version are an OldVersionError', () => {
  const state = initRepo();
  stale(() => update([targets()], state), /^targets version 1 is not newer than the stored version 1$/);
});

test('targets below the stored version are an OldVersionError', () => {
  const state = initRepo(spec(), targets({ version: 3 }));
  stale(() => update([targets({ version: 2 })], state), /^targets version 2 is not newer than the stored version 3$/);
});

test('targets below the highest version ever stored are an OldVersionError', () => {
  const state = initRepo();
  const history = { ...state, latestVersions: new Map([...state.latestVersions, ['targets', 4]]) };
  stale(() => update([targets({ version: 3 })], history), /targets version 3 is not newer than the stored version 4/);
});

test('targets versions may jump (1 to 5)', () => {
  const state = initRepo();
  const next = accept([targets({ version: 5 })], state);
  assert.equal(fileOf(next.plan, 'targets').version, 5);
  assert.equal(next.state.latestVersions.get('targets'), 5);
});

test('a client snapshot at the stored snapshot version is an OldVersionError', () => {
  const state = initClientRepo();
  const tg2 = targets({ version: 2 });
  stale(() => update([tg2, clientSnapshot([state.root!, tg2], { version: 1 })], state), /^snapshot version 1 /);
  assert.equal(fileOf(update([tg2, clientSnapshot([state.root!, tg2], { version: 2 })], state), 'snapshot').version, 2);
});

test('checkVersions refuses two files of one role in an update', () => {
  const files: NewFile[] = [
    { role: 'targets', version: 2, bytes: Buffer.alloc(0) },
    { role: 'targets', version: 3, bytes: Buffer.alloc(0) },
  ];
  assert.throws(() => checkVersions(files, new Map()), OldVersionError);
});

test('checkVersions accepts distinct roles above their stored versions', () => {
  const files: NewFile[] = [
    { role: 'targets', version: 2, bytes: Buffer.alloc(0) },
    { role: 'targets/releases', version: 1, bytes: Buffer.alloc(0) },
    { role: 'snapshot', version: 9, bytes: Buffer.alloc(0) },
  ];
  assert.doesNotThrow(() =>
    checkVersions(
      files,
      new Map([
        ['targets', 1],
        ['snapshot', 8],
      ]),
    ),
  );
  assert.throws(() => checkVersions(files, new Map([['snapshot', 9]])), /snapshot version 9 is not newer than the stored version 9/);
});

// ---------------------------------------------------------------------------------------------
// Expiry of generated files

test('the generated snapshot and timestamp expire at opts.nowMs plus their configured lifetimes', () => {
  const opts = { ...OPTS, nowMs: NOW + 1234, snapshotExpiryMs: 5 * DAY, timestampExpiryMs: 2 * 3_600_000 };
  const plan = update([rootFile(spec()), targets()], EMPTY, SERVER_KEYS, opts);
  const snap = out(plan, 'snapshot');
  const ts = out(plan, 'timestamp');
  assert.equal(snap.expiresMs, opts.nowMs + 5 * DAY);
  assert.equal(ts.expiresMs, opts.nowMs + 2 * 3_600_000);
  assert.equal(parseRfc3339(ts.signed.expires), opts.nowMs + 2 * 3_600_000);
  assert.match(ts.signed.expires, /Z$/);
});

test('a second certificate over the root key pair does not stand in for the listed certificate', () => {
  const pem = selfSignedCertificate(ROOT.privateKey!, createPublicKey(ROOT.privateKey!), { commonName: GUN });
  const b64 = Buffer.from(pem).toString('base64');
  const sibling: TestKey = { keytype: 'ecdsa-x509', publicB64: b64, keyId: tufKeyId('ecdsa-x509', b64), privateKey: ROOT.privateKey };
  assert.notEqual(sibling.keyId, ROOT.keyId);
  // Listed: ROOT. Signed: under the sibling's ID only.
  refused(() => update([rootFile(spec(), [sibling]), targets()]), 'ErrBadRoot', /integrity of roots/);
});
