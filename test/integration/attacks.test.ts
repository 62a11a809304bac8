/**
 * The attacks a TUF repository server must withstand (tuf-notes.md §6, §1.10–1.11;
 * notary-protocol.md §1.10, §2), each sent over HTTP as an update crafted with the test's own
 * keys against a repository created through the API. Every attack must be refused with its
 * exact status and notary error code (and validation error name), and must leave the store
 * exactly as it was: every tuf_files row, the changefeed and the server keys.
 *
 * Two servers: "tight" with small limits (64 KiB bodies, 16 KiB parts, 50 parts) for the
 * endless-data cases, and "roomy" (default body and part limits, 50 parts) for hostile content
 * that fits within the limits (thousands of parts, deep nesting, a 10 MB string).
 */
import assert from 'node:assert/strict';
import { createPublicKey, createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createRepository, type TestRepository } from '../support/client.js';
import { assertInvalidUpdate, assertRefused, rawRequest, storeSnapshot, type RawResponse } from '../support/hostile.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  certKey,
  ecdsaKey,
  inDays,
  keyJson,
  metaOf,
  multipartBody,
  rootDoc,
  selfSignedCertificate,
  signatureFor,
  signFile,
  snapshotDoc,
  targetFile,
  targetsDoc,
  type DelegationSpec,
  type TestKey,
} from '../support/tuf-kit.js';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { tufKeyId } from '../../src/tuf/core/keys.js';

const TIGHT = { SIGNET_MAX_BODY_BYTES: '65536', SIGNET_MAX_PART_BYTES: '16384', SIGNET_MAX_PARTS: '50' };
const ROOMY = { SIGNET_MAX_PARTS: '50' };
const MiB = 1024 * 1024;

const GUN = 'registry.example.com/attacks/app'; // server-held snapshot key
const CLIENT_GUN = 'registry.example.com/attacks/client'; // client-held snapshot key
const ROOMY_GUN = 'registry.example.com/attacks/roomy';

let tight: TestServer;
let roomy: TestServer;
let repo: TestRepository;
let clientRepo: TestRepository;
let roomyRepo: TestRepository;
const releasesKey = ecdsaKey();
const releases: DelegationSpec = { name: 'targets/releases', keys: [releasesKey], paths: ['releases/'] };
/** Every targets file the repository accepted, by version. */
const accepted: Record<number, Buffer> = {};
let releasesV1: Buffer;

// ---- requests ----

function postTo(server: TestServer, gun: string, parts: Record<string, Buffer | string>): Promise<RawResponse> {
  const { body, contentType } = multipartBody(parts);
  return rawRequest(server.url, { method: 'POST', path: `/v2/${gun}/_trust/tuf/`, headers: { 'Content-Type': contentType }, body });
}

const post = (parts: Record<string, Buffer | string>, gun = GUN) => postTo(tight, gun, parts);

async function mustAccept(server: TestServer, gun: string, parts: Record<string, Buffer | string>): Promise<void> {
  const res = await postTo(server, gun, parts);
  assert.equal(res.status, 200, `setup update refused: ${res.text}`);
}

/** Run `attempt` and prove that it changed nothing in the store of `server`. */
async function withoutTrace<T>(attempt: () => Promise<T>, server: TestServer = tight): Promise<T> {
  const db = server.context.database.db;
  const before = await storeSnapshot(db);
  const result = await attempt();
  assert.deepEqual(await storeSnapshot(db), before, 'the refused request changed the store');
  return result;
}

/** POST `parts` to the main repository; it must leave no trace. */
const attack = (parts: Record<string, Buffer | string>, gun = GUN) => withoutTrace(() => post(parts, gun));

// ---- documents ----

/** Targets at `version` (4 is the next acceptable one) keeping the stored delegation. */
function targetsV(version: number, over: Parameters<typeof targetsDoc>[0] = {}) {
  return targetsDoc({ version, delegations: [releases], targets: { app: targetFile(`v${version}`) }, ...over });
}

/** Edit the parsed JSON of a signed file and serialise it again (signatures untouched). */
function edited(bytes: Buffer, edit: (doc: { signed: any; signatures: any[] }) => void): Buffer {
  const doc = JSON.parse(bytes.toString('utf8')) as { signed: any; signatures: any[] };
  edit(doc);
  return Buffer.from(JSON.stringify(doc));
}

/** The same key object with a harmless extra field: a different key ID for the same key. */
function aliasOf(key: TestKey) {
  const json = { ...keyJson(key), 'x-alias': 'same key, other id' };
  return { id: createHash('sha256').update(canonicalJson(json)).digest('hex'), json };
}

before(async () => {
  tight = await startTestServer(TIGHT);
  roomy = await startTestServer(ROOMY);
  repo = await createRepository(tight.url, GUN, { serverSnapshot: true });
  accepted[1] = repo.targets;
  for (const version of [2, 3]) {
    accepted[version] = signFile(targetsV(version), [repo.targetsKey]);
    await mustAccept(tight, GUN, { targets: accepted[version]! });
  }
  releasesV1 = signFile(targetsDoc({ version: 1, targets: { 'releases/app': targetFile('r1') } }), [releasesKey]);
  await mustAccept(tight, GUN, { 'targets/releases': releasesV1 });
  clientRepo = await createRepository(tight.url, CLIENT_GUN);
  roomyRepo = await createRepository(roomy.url, ROOMY_GUN, { serverSnapshot: true });
});

after(async () => {
  await tight?.close();
  await roomy?.close();
});

// ---- rollback, replay, freeze ----

describe('rollback and replay', () => {
  test('targets at the stored version (3), freshly signed, are 400 VERSION', async () => {
    const same = signFile(targetsV(3, { targets: { app: targetFile('other v3') } }), [repo.targetsKey]);
    assertRefused(await attack({ targets: same }), 400, 'VERSION');
  });

  test('targets below the stored version (2, 1), freshly signed, are 400 VERSION', async () => {
    for (const version of [2, 1]) {
      const lower = signFile(targetsV(version, { targets: { evil: targetFile('rolled back') } }), [repo.targetsKey]);
      assertRefused(await attack({ targets: lower }), 400, 'VERSION');
    }
  });

  test('a replay of the accepted targets v1 (and v2) after v3 is 400 VERSION', async () => {
    assertRefused(await attack({ targets: accepted[1]! }), 400, 'VERSION');
    assertRefused(await attack({ targets: accepted[2]! }), 400, 'VERSION');
  });

  test('a replay of the accepted delegation file targets/releases v1 is 400 VERSION', async () => {
    assertRefused(await attack({ 'targets/releases': releasesV1 }), 400, 'VERSION');
  });

  test('a replay of root v1 is 400 VERSION', async () => {
    assertRefused(await attack({ root: repo.root }), 400, 'VERSION');
  });

  test('a replay of a whole first update (root, targets, snapshot v1) is 400 VERSION', async () => {
    const parts = { root: clientRepo.root, targets: clientRepo.targets, snapshot: clientRepo.snapshot! };
    assertRefused(await attack(parts, CLIENT_GUN), 400, 'VERSION');
  });
});

describe('indefinite freeze', () => {
  const past = new Date(Date.now() - 86_400_000).toISOString();

  test('expired targets are 400 INVALID_UPDATE ErrBadTargets', async () => {
    const expired = signFile(targetsV(4, { expires: past }), [repo.targetsKey]);
    assertInvalidUpdate(await attack({ targets: expired }), 'ErrBadTargets', /expired/);
  });

  test('an expired root is 400 INVALID_UPDATE ErrBadRoot', async () => {
    const expired = signFile(rootDoc({ ...repo.rootSpec, version: 2, expires: past }), [repo.rootKey]);
    assertInvalidUpdate(await attack({ root: expired }), 'ErrBadRoot', /expired/);
  });

  test('an expired delegation file is 400 INVALID_UPDATE ErrBadTargets', async () => {
    const expired = signFile(targetsDoc({ version: 2, expires: past, targets: { 'releases/app': targetFile('r2') } }), [releasesKey]);
    assertInvalidUpdate(await attack({ 'targets/releases': expired }), 'ErrBadTargets', /expired/);
  });

  test('an expired client snapshot is 400 INVALID_UPDATE ErrBadSnapshot', async () => {
    const targets = signFile(targetsDoc({ version: 2 }), [clientRepo.targetsKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, expires: past, files: { root: clientRepo.root, targets } }), [clientRepo.snapshotKey]);
    assertInvalidUpdate(await attack({ targets, snapshot }, CLIENT_GUN), 'ErrBadSnapshot', /expired/);
  });
});

// ---- root ----

describe('root attacks', () => {
  test('a root version jump (+2) is 400 INVALID_UPDATE ErrBadRoot', async () => {
    const jump = signFile(rootDoc({ ...repo.rootSpec, version: 3 }), [repo.rootKey]);
    assertInvalidUpdate(await attack({ root: jump }), 'ErrBadRoot', /must increment the version\. Current 1, new 3/);
  });

  test('a root rotation without the old root threshold (signed by the new key only) is ErrBadRoot', async () => {
    const newRootKey = certKey({ commonName: GUN });
    const rotated = signFile(rootDoc({ ...repo.rootSpec, version: 2, root: [newRootKey] }), [newRootKey]);
    assertInvalidUpdate(await attack({ root: rotated }), 'ErrBadRoot', /current trusted certificates/);
  });

  test('a root rotation without the new root threshold (signed by the old key only) is ErrBadRoot', async () => {
    const newRootKey = certKey({ commonName: GUN });
    const rotated = signFile(rootDoc({ ...repo.rootSpec, version: 2, root: [newRootKey] }), [repo.rootKey]);
    assertInvalidUpdate(await attack({ root: rotated }), 'ErrBadRoot', /integrity of roots/);
  });

  test('a new root with root threshold 2 signed by only one of its two keys is ErrBadRoot', async () => {
    const second = certKey({ commonName: GUN });
    const raised = signFile(rootDoc({ ...repo.rootSpec, version: 2, root: [repo.rootKey, second], rootThreshold: 2 }), [repo.rootKey]);
    assertInvalidUpdate(await attack({ root: raised }), 'ErrBadRoot', /integrity of roots/);
  });

  test('a root handing the timestamp role to a key the server does not hold is ErrBadRoot', async () => {
    // the repository would freeze: nobody could sign its timestamps any more
    const frozen = signFile(rootDoc({ ...repo.rootSpec, version: 2, timestamp: [ecdsaKey()] }), [repo.rootKey]);
    assertInvalidUpdate(await attack({ root: frozen }), 'ErrBadRoot', /no {2}timestamp keys exist on the server/);
  });

  test('a root certificate issued for another GUN cannot root this repository', async () => {
    const foreign = certKey({ commonName: 'registry.example.com/attacks/other' });
    const rotated = signFile(rootDoc({ ...repo.rootSpec, version: 2, root: [foreign] }), [repo.rootKey, foreign]);
    assertInvalidUpdate(await attack({ root: rotated }), 'ErrBadRoot', /valid leaf certificates/);
  });
});

// ---- signatures ----

describe('arbitrary software: targets not signed by the targets role', () => {
  test('targets signed by an unknown key are ErrBadTargets', async () => {
    const forged = signFile(targetsV(4), [ecdsaKey()]);
    assertInvalidUpdate(await attack({ targets: forged }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test("targets signed by the root key (another role's key) are ErrBadTargets", async () => {
    const forged = signFile(targetsV(4), [repo.rootKey]);
    assertInvalidUpdate(await attack({ targets: forged }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test("targets signed by the snapshot key (another role's key) are ErrBadTargets", async () => {
    const targets = signFile(targetsDoc({ version: 2, targets: { evil: targetFile('evil') } }), [clientRepo.snapshotKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: clientRepo.root, targets } }), [clientRepo.snapshotKey]);
    assertInvalidUpdate(await attack({ targets, snapshot }, CLIENT_GUN), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test('targets without any signature are ErrBadTargets', async () => {
    for (const signatures of [[], null]) {
      const unsigned = edited(signFile(targetsV(4), [repo.targetsKey]), (d) => {
        d.signatures = signatures as any;
      });
      assertInvalidUpdate(await attack({ targets: unsigned }), 'ErrBadTargets');
    }
  });

  test('a target hash changed after signing (signature kept) is ErrBadTargets', async () => {
    const signed = signFile(targetsV(4), [repo.targetsKey]);
    const tampered = edited(signed, (d) => {
      d.signed.targets.app.hashes.sha256 = targetFile('malware').hashes.sha256;
    });
    assert.notDeepEqual(tampered, signed);
    assertInvalidUpdate(await attack({ targets: tampered }), 'ErrBadTargets', /fewer than 1 valid signatures/);
    // the same edit on the raw bytes, keeping the canonical layout of the signed part
    const good = targetFile('v4').hashes.sha256;
    const raw = Buffer.from(signed.toString('utf8').replace(good, targetFile('malware').hashes.sha256));
    assert.notDeepEqual(raw, signed);
    assertInvalidUpdate(await attack({ targets: raw }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });
});

describe('metadata that has no canonical form', () => {
  // Canonical JSON has integers only (notary's canonicaliser fails on anything else), so such a
  // file can carry no valid signature. Signet refuses it as unreadable metadata, 400
  // MALFORMED_JSON (notary would report the failed signature check, 400 INVALID_UPDATE).
  const numbers = { 'a fraction': '1.5', 'an exponent beyond double range': '1e400', 'an integer beyond 2^53': '9007199254740993', 'a small exponent': '1e-7' };

  test('a non-integer or unsafe number inside "signed" is 400 MALFORMED_JSON, not a 5xx', async () => {
    const targets = signFile(targetsV(4), [repo.targetsKey]).toString('utf8');
    const root = signFile(rootDoc({ ...repo.rootSpec, version: 2 }), [repo.rootKey]).toString('utf8');
    const failures: string[] = [];
    for (const [what, n] of Object.entries(numbers)) {
      for (const [role, text] of [
        ['targets', targets],
        ['root', root],
      ] as const) {
        const bytes = text.replace('{"signed":{', `{"signed":{"x-number":${n},`);
        const res = await attack({ [role]: bytes });
        if (res.status !== 400) failures.push(`${role} with ${what} (${n}): ${res.status} ${res.text.trim()}`);
        else assertRefused(res, 400, 'MALFORMED_JSON');
      }
    }
    assert.deepEqual(failures, [], 'numbers without a canonical form must be refused, never a 5xx');
  });
});

describe('thresholds faked with one key', () => {
  const targetsKey2 = ecdsaKey();

  /** Root v2 (validly signed) whose targets role needs 2 signatures from `keys` (key ID → key object). */
  function rootWithTargetsThreshold2(keys: Record<string, unknown>) {
    const doc = rootDoc({ ...repo.rootSpec, version: 2, targets: [repo.targetsKey, targetsKey2], targetsThreshold: 2 });
    const all = doc['keys'] as Record<string, unknown>;
    delete all[targetsKey2.keyId];
    Object.assign(all, keys);
    (doc['roles'] as Record<string, { keyids: string[] }>)['targets']!.keyids = Object.keys(keys);
    return signFile(doc, [repo.rootKey]);
  }

  test('duplicate signatures by one key do not meet a targets threshold of 2', async () => {
    const root = signFile(rootDoc({ ...repo.rootSpec, version: 2, targets: [repo.targetsKey, targetsKey2], targetsThreshold: 2 }), [repo.rootKey]);
    const twice = signFile(targetsV(4), [repo.targetsKey, repo.targetsKey]);
    const sigs = (JSON.parse(twice.toString('utf8')) as { signatures: { keyid: string; sig: string }[] }).signatures;
    assert.equal(sigs.length, 2);
    assert.equal(sigs[0]!.keyid, sigs[1]!.keyid);
    assertInvalidUpdate(await attack({ root, targets: twice }), 'ErrBadTargets', /fewer than 2 valid signatures/);
  });

  test('one ecdsa key listed under two key IDs (an extra field in the key object) counts once', async () => {
    const alias = aliasOf(repo.targetsKey);
    assert.notEqual(alias.id, repo.targetsKey.keyId);
    const root = rootWithTargetsThreshold2({ [repo.targetsKey.keyId]: keyJson(repo.targetsKey), [alias.id]: alias.json });
    const doc = targetsV(4);
    // two valid signatures by the one key, one under each ID
    const targets = signFile(doc, [repo.targetsKey], [{ ...signatureFor(repo.targetsKey, canonicalJson(doc)), keyid: alias.id }]);
    assertInvalidUpdate(await attack({ root, targets }), 'ErrBadTargets', /fewer than 2 valid signatures/);
  });

  test('one key listed as ecdsa and as an ecdsa-x509 certificate of the same key pair counts once', async () => {
    const pem = selfSignedCertificate(repo.targetsKey.privateKey!, createPublicKey(repo.targetsKey.privateKey!), { commonName: GUN });
    const asCert = { keytype: 'ecdsa-x509', keyval: { private: null, public: Buffer.from(pem).toString('base64') } };
    const certId = tufKeyId('ecdsa-x509', asCert.keyval.public);
    const root = rootWithTargetsThreshold2({ [repo.targetsKey.keyId]: keyJson(repo.targetsKey), [certId]: asCert });
    const doc = targetsV(4);
    const targets = signFile(doc, [repo.targetsKey], [{ ...signatureFor(repo.targetsKey, canonicalJson(doc)), keyid: certId }]);
    assertInvalidUpdate(await attack({ root, targets }), 'ErrBadTargets', /fewer than 2 valid signatures/);
  });
});

describe('signatures with the wrong method', () => {
  const relabelled = (method: string) =>
    edited(signFile(targetsV(4), [repo.targetsKey]), (d) => {
      d.signatures[0].method = method;
    });

  test('an ecdsa signature labelled rsapss does not count', async () => {
    assertInvalidUpdate(await attack({ targets: relabelled('rsapss') }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test('an ecdsa signature labelled eddsa does not count', async () => {
    assertInvalidUpdate(await attack({ targets: relabelled('eddsa') }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test('an ecdsa signature with an unknown or empty method does not count', async () => {
    for (const method of ['ecdsa-sha2-nistp256', 'none', '']) {
      assertInvalidUpdate(await attack({ targets: relabelled(method) }), 'ErrBadTargets', /fewer than 1 valid signatures/);
    }
  });

  test("a DER-encoded ECDSA signature (not notary's raw r‖s) does not count", async () => {
    const { sign } = await import('node:crypto');
    const doc = targetsV(4);
    const der = sign('sha256', canonicalJson(doc), repo.targetsKey.privateKey!).toString('base64');
    const targets = signFile(doc, [], [{ keyid: repo.targetsKey.keyId, method: 'ecdsa', sig: der }]);
    assertInvalidUpdate(await attack({ targets }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });
});

// ---- mix-and-match ----

describe('mix-and-match', () => {
  test('a client snapshot whose targets hash is of the previous targets file is ErrBadSnapshot', async () => {
    const targets = signFile(targetsDoc({ version: 2, targets: { app: targetFile('new') } }), [clientRepo.targetsKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: clientRepo.root, targets: clientRepo.targets } }), [clientRepo.snapshotKey]);
    assertInvalidUpdate(await attack({ targets, snapshot }, CLIENT_GUN), 'ErrBadSnapshot', /snapshot entry for targets/);
  });

  test('a client snapshot whose targets hash is of another, never uploaded, file is ErrBadSnapshot', async () => {
    const targets = signFile(targetsDoc({ version: 2, targets: { app: targetFile('new') } }), [clientRepo.targetsKey]);
    const other = signFile(targetsDoc({ version: 2, targets: { app: targetFile('something else') } }), [clientRepo.targetsKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: clientRepo.root, targets: other } }), [clientRepo.snapshotKey]);
    assertInvalidUpdate(await attack({ targets, snapshot }, CLIENT_GUN), 'ErrBadSnapshot', /snapshot entry for targets/);
  });

  test('a client snapshot whose root hash is of another root is ErrBadSnapshot', async () => {
    const targets = signFile(targetsDoc({ version: 2 }), [clientRepo.targetsKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: repo.root, targets } }), [clientRepo.snapshotKey]);
    assertInvalidUpdate(await attack({ targets, snapshot }, CLIENT_GUN), 'ErrBadSnapshot', /snapshot entry for root/);
  });

  test('files of another repository cannot be posted to this one', async () => {
    // a valid update of CLIENT_GUN (as the control below shows) sent to GUN
    const targets = signFile(targetsDoc({ version: 4 }), [clientRepo.targetsKey]);
    assertInvalidUpdate(await attack({ targets }), 'ErrBadTargets', /fewer than 1 valid signatures/);
    assertInvalidUpdate(await attack({ root: signFile(rootDoc({ ...clientRepo.rootSpec, version: 2 }), [clientRepo.rootKey]) }), 'ErrBadRoot');
  });
});

// ---- delegations ----

describe('delegation attacks', () => {
  test('a delegation signed by a key its parent does not list is ErrBadTargets', async () => {
    const forged = signFile(targetsDoc({ version: 2, targets: { 'releases/app': targetFile('evil') } }), [ecdsaKey()]);
    assertInvalidUpdate(await attack({ 'targets/releases': forged }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test("a delegation signed by the parent's own targets key (not a delegation key) is ErrBadTargets", async () => {
    const forged = signFile(targetsDoc({ version: 2, targets: { 'releases/app': targetFile('evil') } }), [repo.targetsKey]);
    assertInvalidUpdate(await attack({ 'targets/releases': forged }), 'ErrBadTargets', /fewer than 1 valid signatures/);
  });

  test("delegated targets outside the delegation's paths are ErrBadTargets", async () => {
    for (const name of ['other/app', 'app', 'release/app', '../releases/app']) {
      const outside = signFile(targetsDoc({ version: 2, targets: { [name]: targetFile('evil') } }), [releasesKey]);
      assertInvalidUpdate(await attack({ 'targets/releases': outside }), 'ErrBadTargets', /outside the paths/);
    }
  });

  test('a role the parent does not delegate is ErrBadTargets', async () => {
    const evil = signFile(targetsDoc({ version: 1, targets: { 'releases/app': targetFile('evil') } }), [releasesKey]);
    assertInvalidUpdate(await attack({ 'targets/evil': evil }), 'ErrBadTargets', /not delegated/);
    assertInvalidUpdate(await attack({ 'targets/releases/sub': evil }), 'ErrBadTargets', /not delegated/);
  });

  test('a delegated role cannot widen its own paths by delegating further', async () => {
    // targets/releases (validly signed) delegates targets/releases/wide with paths [""] …
    const wideKey = ecdsaKey();
    const parent = signFile(
      targetsDoc({ version: 2, targets: { 'releases/app': targetFile('r2') }, delegations: [{ name: 'targets/releases/wide', keys: [wideKey], paths: [''] }] }),
      [releasesKey],
    );
    // … but the child may still only list what targets/releases was given
    const child = signFile(targetsDoc({ version: 1, targets: { 'anything/app': targetFile('evil') } }), [wideKey]);
    assertInvalidUpdate(await attack({ 'targets/releases': parent, 'targets/releases/wide': child }), 'ErrBadTargets', /outside the paths/);
  });
});

// ---- names ----

describe('role names outside the delegation tree', () => {
  const body = () => signFile(targetsV(4), [repo.targetsKey]);
  const roles = [
    'releases',
    'foo/bar',
    'targets/../root',
    '../root',
    'targets/..',
    'targets/.',
    'targets/releases/../../root',
    'TARGETS',
    'Targets',
    'targets/Releases',
    'ROOT',
    'targets/my releases',
    ' targets',
    'targets ',
    'targets/ ',
    'targets/',
    'targets//releases',
    '/targets',
    'targets\\releases',
    'targets/releases?x',
    'targets/releases#x',
    'targets/réleases',
    `targets/${'a'.repeat(250)}`,
  ];

  for (const role of roles) {
    test(`a part named ${JSON.stringify(role.length > 40 ? `${role.slice(0, 20)}…(${role.length})` : role)} is 400 INVALID_ROLE`, async () => {
      const error = assertRefused(await attack({ [role]: body() }), 400, 'INVALID_ROLE');
      assert.equal(error.detail, role);
    });
  }

  test('an empty part name (or just ".json") is 400 NO_FILENAME', async () => {
    assertRefused(await attack({ '': body() }), 400, 'NO_FILENAME');
    assertRefused(await attack({ '.json': body() }), 400, 'NO_FILENAME');
  });

  test('a bad name next to valid parts refuses the whole update', async () => {
    assertRefused(await attack({ targets: body(), 'targets/../root': body() }), 400, 'INVALID_ROLE');
  });
});

describe('repository names (GUNs) outside what the server accepts', () => {
  const badGuns: Record<string, string> = {
    'a ".." segment': 'registry.example.com/../attacks/app',
    'a leading ".." segment': '../registry.example.com/attacks/app',
    'a trailing ".." segment': 'registry.example.com/attacks/app/..',
    'a percent-encoded ".." segment': 'registry.example.com/%2e%2E/attacks/app',
    'a NUL (%00)': 'registry.example.com/attacks/app%00',
    'a %01': 'registry.example.com/attacks%01/app',
    'a DEL (%7f)': 'registry.example.com/att%7Facks/app',
    'a newline (%0a)': 'registry.example.com/attacks/app%0a',
    'more than 255 bytes (ASCII)': `registry.example.com/${'a'.repeat(235)}`,
    'more than 255 bytes (UTF-8, 128 characters)': `registry.example.com/${'%C3%A9'.repeat(118)}`,
  };

  test('the long names really are over 255 bytes (and the short ones are not)', () => {
    assert.equal(Buffer.byteLength(decodeURIComponent(badGuns['more than 255 bytes (ASCII)']!)), 256);
    assert.equal(Buffer.byteLength(decodeURIComponent(badGuns['more than 255 bytes (UTF-8, 128 characters)']!)), 257);
    assert.ok(decodeURIComponent(badGuns['more than 255 bytes (UTF-8, 128 characters)']!).length < 255);
  });

  for (const [what, gun] of Object.entries(badGuns)) {
    test(`a GUN with ${what} is 400 INVALID_GUN on every GUN route, and nothing is created`, async () => {
      const { body, contentType } = multipartBody({ targets: signFile(targetsV(4), [repo.targetsKey]) });
      const routes: { method: string; path: string; body?: Buffer }[] = [
        { method: 'GET', path: `/v2/${gun}/_trust/tuf/root.json` },
        { method: 'GET', path: `/v2/${gun}/_trust/tuf/2.root.json` },
        { method: 'GET', path: `/v2/${gun}/_trust/tuf/timestamp.json` },
        { method: 'POST', path: `/v2/${gun}/_trust/tuf/`, body },
        { method: 'DELETE', path: `/v2/${gun}/_trust/tuf/` },
        { method: 'GET', path: `/v2/${gun}/_trust/tuf/timestamp.key` },
        { method: 'POST', path: `/v2/${gun}/_trust/tuf/timestamp.key` },
        { method: 'GET', path: `/v2/${gun}/_trust/tuf/snapshot.key` },
        { method: 'POST', path: `/v2/${gun}/_trust/tuf/snapshot.key` },
        { method: 'GET', path: `/v2/${gun}/_trust/changefeed?change_id=0&records=10` },
      ];
      await withoutTrace(async () => {
        for (const r of routes) {
          const res = await rawRequest(tight.url, {
            method: r.method,
            path: r.path,
            ...(r.body ? { body: r.body, headers: { 'Content-Type': contentType } } : {}),
          });
          assert.equal(res.status, 400, `${r.method} ${r.path}: ${res.status} ${res.text}`);
          assertRefused(res, 400, 'INVALID_GUN');
        }
      });
    });
  }
});

// ---- endless data ----

describe('endless data (64 KiB body limit)', () => {
  const { contentType } = multipartBody({}, 'endless');
  const update = `/v2/${GUN}/_trust/tuf/`;
  /** A multipart body of `size` bytes: one targets part padded with spaces (valid JSON whitespace). */
  function hugeBody(size: number): Buffer {
    const head = Buffer.from('--endless\r\nContent-Disposition: form-data; name="files"; filename="targets"\r\n\r\n');
    const tail = Buffer.from('\r\n--endless--\r\n');
    return Buffer.concat([head, Buffer.alloc(size - head.length - tail.length, 0x20), tail]);
  }

  async function stillServing(): Promise<void> {
    const ping = await rawRequest(tight.url, { method: 'GET', path: '/v2/' });
    assert.equal(ping.status, 200);
    const targets = await rawRequest(tight.url, { method: 'GET', path: `/v2/${GUN}/_trust/tuf/targets.json` });
    assert.equal(targets.status, 200);
    assert.deepEqual(targets.body, accepted[3]);
  }

  test('1 MiB with a correct Content-Length is 413 TOO_LARGE, and the server stays up', async () => {
    const body = hugeBody(MiB);
    const res = await withoutTrace(() => rawRequest(tight.url, { method: 'POST', path: update, headers: { 'Content-Type': contentType }, body }));
    assertRefused(res, 413, 'TOO_LARGE');
    await stillServing();
  });

  test('1 MiB chunked without Content-Length is 413 TOO_LARGE, and the server stays up', async () => {
    const body = hugeBody(MiB);
    const chunk = 16 * 1024;
    const res = await withoutTrace(() =>
      rawRequest(tight.url, {
        method: 'POST',
        path: update,
        headers: { 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' },
        stream: (i) => (i * chunk < body.length ? body.subarray(i * chunk, (i + 1) * chunk) : null),
      }),
    );
    assertRefused(res, 413, 'TOO_LARGE');
    await stillServing();
  });

  test('a chunked body that never ends is refused once past the limit, not read to the end', async () => {
    const head = Buffer.from('--endless\r\nContent-Disposition: form-data; name="files"; filename="targets"\r\n\r\n');
    const filler = Buffer.alloc(64 * 1024, 0x20);
    const cap = 256; // at most 16 MiB; the server must answer long before
    let produced = 0;
    const res = await withoutTrace(() =>
      rawRequest(tight.url, {
        method: 'POST',
        path: update,
        headers: { 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' },
        stream: (i) => (i === 0 ? head : i < cap ? (produced++, filler) : null),
      }),
    );
    assertRefused(res, 413, 'TOO_LARGE');
    assert.ok(produced < cap, `the server only answered after ${produced} chunks of 64 KiB`);
    await stillServing();
  });

  test('a Content-Length far beyond the limit is refused before any body is sent', async () => {
    const res = await withoutTrace(() =>
      rawRequest(tight.url, {
        method: 'POST',
        path: update,
        headers: { 'Content-Type': contentType, 'Content-Length': String(10 * 1024 * MiB) },
        stream: () => null, // never sends a byte of the announced 10 GiB
        timeoutMs: 10_000,
      }),
    );
    assertRefused(res, 413, 'TOO_LARGE');
    await stillServing();
  });

  test('a part over SIGNET_MAX_PART_BYTES (16 KiB) within the body limit is 413 TOO_LARGE', async () => {
    const part = Buffer.alloc(20_000, 0x20);
    const { body, contentType: type } = multipartBody({ targets: part });
    assert.ok(body.length < 65536);
    assertRefused(await withoutTrace(() => rawRequest(tight.url, { method: 'POST', path: update, headers: { 'Content-Type': type }, body })), 413, 'TOO_LARGE');
  });

  test('a thousand tiny parts within the body limit (SIGNET_MAX_PARTS=50) are 400 MALFORMED_UPLOAD', async () => {
    const part = '--b\r\nContent-Disposition: form-data; filename="targets"\r\n\r\n{}\r\n';
    const body = Buffer.from(part.repeat(1000) + '--b--\r\n');
    assert.ok(body.length < 65536);
    const res = await withoutTrace(() =>
      rawRequest(tight.url, { method: 'POST', path: update, headers: { 'Content-Type': 'multipart/form-data; boundary=b' }, body }),
    );
    assertRefused(res, 400, 'MALFORMED_UPLOAD');
  });
});

describe('hostile content within the limits (default body and part limits, 50 parts)', () => {
  const update = `/v2/${ROOMY_GUN}/_trust/tuf/`;
  const send = (body: Buffer, contentType: string) =>
    withoutTrace(() => rawRequest(roomy.url, { method: 'POST', path: update, headers: { 'Content-Type': contentType }, body }), roomy);
  const sendParts = (parts: Record<string, Buffer | string>) => {
    const { body, contentType } = multipartBody(parts);
    return send(body, contentType);
  };

  test('5,000 tiny parts are 400 MALFORMED_UPLOAD', async () => {
    const part = '--b\r\nContent-Disposition: form-data; name="files"; filename="targets"\r\n\r\n{}\r\n';
    const started = Date.now();
    assertRefused(await send(Buffer.from(part.repeat(5000) + '--b--\r\n'), 'multipart/form-data; boundary=b'), 400, 'MALFORMED_UPLOAD');
    assert.ok(Date.now() - started < 10_000);
  });

  test('100,000 levels of "[" as a part are 400 MALFORMED_JSON, not a crash', async () => {
    const depth = 100_000;
    assertRefused(await sendParts({ targets: '['.repeat(depth) }), 400, 'MALFORMED_JSON');
    assertRefused(await sendParts({ targets: '['.repeat(depth) + ']'.repeat(depth) }), 400, 'MALFORMED_JSON');
    assertRefused(await sendParts({ targets: '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) }), 400, 'MALFORMED_JSON');
  });

  test('100,000 levels of nesting inside "signed" are 400 MALFORMED_JSON, not a crash', async () => {
    // Well-formed JSON whose envelope is fine: the nesting sits in an unknown field of `signed`
    // (and in a target's `custom`), which the server must canonicalise to check signatures.
    const depth = 100_000;
    const nested = '['.repeat(depth) + ']'.repeat(depth);
    const doc = targetsDoc({ version: 2, targets: { app: targetFile('app') } });
    const signed = signFile(doc, [roomyRepo.targetsKey]).toString('utf8');
    const inUnknownField = signed.replace('{"signed":{', `{"signed":{"x-deep":${nested},`);
    const inCustom = signed.replace('"length":3', `"custom":${nested},"length":3`);
    assert.notEqual(inCustom, signed);
    const failures: string[] = [];
    for (const [where, bytes] of [
      ['an unknown field of signed', inUnknownField],
      ["a target's custom", inCustom],
    ] as const) {
      const res = await sendParts({ targets: bytes });
      if (res.status !== 400) failures.push(`${where}: ${res.status} ${res.text.trim()}`);
      else assertRefused(res, 400, 'MALFORMED_JSON');
    }
    const ping = await rawRequest(roomy.url, { method: 'GET', path: '/v2/' });
    assert.equal(ping.status, 200, 'the server is still up');
    assert.deepEqual(failures, [], 'deeply nested metadata must be refused as MALFORMED_JSON');
  });

  test('a 10 MB single-line string inside "signed" is refused cleanly', async () => {
    const huge = 'A'.repeat(10 * 1000 * 1000);
    const cases: Record<string, Buffer> = {
      // not signed by the targets key: must be refused after reading all of it
      'an unknown field, unknown signer': signFile({ ...targetsDoc({ version: 2 }), 'x-huge': huge }, [ecdsaKey()]),
      'a target name, unknown signer': signFile(targetsDoc({ version: 2, targets: { [huge]: targetFile('x') } }), [ecdsaKey()]),
      // signed by the right key, then the string grew by one character
      'a grown string, right signer': Buffer.from(
        signFile({ ...targetsDoc({ version: 2 }), 'x-huge': huge }, [roomyRepo.targetsKey])
          .toString('utf8')
          .replace(huge, huge + 'A'),
      ),
    };
    for (const [what, bytes] of Object.entries(cases)) {
      assert.ok(bytes.length > 10_000_000, what);
      const started = Date.now();
      const res = await sendParts({ targets: bytes });
      assertInvalidUpdate(res, 'ErrBadTargets', /fewer than 1 valid signatures/);
      assert.ok(Date.now() - started < 15_000, `${what}: took ${Date.now() - started} ms`);
    }
    const ping = await rawRequest(roomy.url, { method: 'GET', path: '/v2/' });
    assert.equal(ping.status, 200);
  });

  test('a 10 MB part filename is 400 MALFORMED_UPLOAD (part headers are bounded)', async () => {
    const body = Buffer.from(`--b\r\nContent-Disposition: form-data; name="files"; filename="targets/${'a'.repeat(10 * 1000 * 1000)}"\r\n\r\n{}\r\n--b--\r\n`);
    assertRefused(await send(body, 'multipart/form-data; boundary=b'), 400, 'MALFORMED_UPLOAD');
  });
});

// ---- controls: the honest counterparts are accepted (so every refusal above was for its reason) ----

describe('controls', () => {
  test('root v2 with targets threshold 2 and targets v4 signed by both keys is accepted', async () => {
    const targetsKey2 = ecdsaKey();
    const root = signFile(rootDoc({ ...repo.rootSpec, version: 2, targets: [repo.targetsKey, targetsKey2], targetsThreshold: 2 }), [repo.rootKey]);
    const targets = signFile(targetsV(4), [repo.targetsKey, targetsKey2]);
    assert.equal((await post({ root, targets })).status, 200);
  });

  test('a delegation file inside its paths, signed by its key, is accepted', async () => {
    const next = signFile(targetsDoc({ version: 2, targets: { 'releases/app': targetFile('r2') } }), [releasesKey]);
    const res = await post({ 'targets/releases': next });
    assert.equal(res.status, 200, res.text);
  });

  test('a client snapshot that hashes the uploaded targets is accepted; a forged timestamp with it is ignored', async () => {
    const targets = signFile(targetsDoc({ version: 2, targets: { app: targetFile('new') } }), [clientRepo.targetsKey]);
    const snapshot = signFile(snapshotDoc({ version: 2, files: { root: clientRepo.root, targets } }), [clientRepo.snapshotKey]);
    const forged = signFile({ _type: 'Timestamp', expires: inDays(3650), meta: { snapshot: metaOf(snapshot) }, version: 99 }, [ecdsaKey()]);
    const res = await post({ targets, snapshot, timestamp: forged }, CLIENT_GUN);
    assert.equal(res.status, 200, res.text);
    const served = await rawRequest(tight.url, { method: 'GET', path: `/v2/${CLIENT_GUN}/_trust/tuf/timestamp.json` });
    assert.equal(served.status, 200);
    assert.notDeepEqual(served.body, forged);
    const timestamp = JSON.parse(served.text) as { signed: { version: number }; signatures: { keyid: string }[] };
    assert.equal(timestamp.signed.version, 2, 'the server signed the next timestamp itself');
    assert.deepEqual(
      timestamp.signatures.map((s) => s.keyid),
      [clientRepo.timestampKey.keyId],
    );
  });

  test('the roomy server accepts targets signed by its targets key', async () => {
    const targets = signFile(targetsDoc({ version: 2, expires: inDays(30) }), [roomyRepo.targetsKey]);
    const res = await postTo(roomy, ROOMY_GUN, { targets });
    assert.equal(res.status, 200, res.text);
  });
});
