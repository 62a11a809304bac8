/**
 * The re-sign planner: which server-signed files an expired (or soon expiring) repository gets,
 * with what versions and expiries, and when it gets none.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateServerKey, signingKey } from '../../src/signing/server-key.js';
import { parseSignedFile, type RootSigned } from '../../src/tuf/notary/metadata.js';
import { planResign, type ResignInput } from '../../src/tuf/notary/resign.js';
import { rootRoleKeys, signatureCount } from '../../src/tuf/notary/role-keys.js';
import { metaOf, rootDoc, certKey, ecdsaKey, signFile, snapshotDoc, targetsDoc } from '../support/tuf-kit.js';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86_400_000;

function serverKey(role: 'snapshot' | 'timestamp') {
  const k = generateServerKey('ed25519');
  return { signer: signingKey(k.keyId, role, k.keytype, k.privateDer), key: { keyId: k.keyId, keytype: k.keytype, publicB64: k.publicKey, privateKey: null } };
}

function setup(opts: { snapshotExpires: number; timestampExpires: number; serverSnapshot?: boolean }): ResignInput {
  const ts = serverKey('timestamp');
  const snap = serverKey('snapshot');
  const clientSnapshot = ecdsaKey();
  const rootKey = certKey({ commonName: 'registry.example.com/resign' });
  const root = rootDoc({ root: [rootKey], targets: [ecdsaKey()], snapshot: [opts.serverSnapshot === false ? clientSnapshot : snap.key], timestamp: [ts.key] });
  const rootBytes = signFile(root, [rootKey]);
  const targets = signFile(targetsDoc({}), [ecdsaKey()]);
  const snapshotBytes = signFile(snapshotDoc({ version: 4, expires: new Date(opts.snapshotExpires).toISOString(), files: { root: rootBytes, targets } }), [
    clientSnapshot,
  ]);
  const timestampBytes = signFile(
    { _type: 'Timestamp', expires: new Date(opts.timestampExpires).toISOString(), meta: { snapshot: metaOf(snapshotBytes) }, version: 7 },
    [clientSnapshot],
  );
  return {
    root: root as unknown as RootSigned,
    timestamp: parseSignedFile('timestamp', timestampBytes),
    snapshot: { file: parseSignedFile('snapshot', snapshotBytes), bytes: snapshotBytes },
    latestVersions: new Map([
      ['snapshot', 5],
      ['timestamp', 9],
    ]),
    serverKeys: [ts.signer, ...(opts.serverSnapshot === false ? [] : [snap.signer])],
    nowMs: NOW,
    horizonMs: 0,
    expiries: { snapshotMs: 3 * DAY, timestampMs: DAY },
  };
}

const versions = (files: { role: string; version: number }[]) => files.map((f) => [f.role, f.version]);

test('nothing is due: no files', () => {
  assert.deepEqual(planResign(setup({ snapshotExpires: NOW + 10 * DAY, timestampExpires: NOW + DAY })), []);
});

test('an expired timestamp: the next timestamp version, over the stored snapshot, signed by the held key', () => {
  const input = setup({ snapshotExpires: NOW + 10 * DAY, timestampExpires: NOW - 1 });
  const files = planResign(input);
  assert.deepEqual(versions(files), [['timestamp', 10]]);
  const ts = parseSignedFile('timestamp', files[0]!.bytes);
  assert.equal(ts.signed.expires, '2026-06-02T00:00:00Z');
  assert.deepEqual(ts.signed['meta'], { snapshot: metaOf(input.snapshot.bytes) });
  assert.ok(signatureCount(ts.message(), ts.signatures, rootRoleKeys(input.root, 'timestamp')).met, 'signed by the key the root lists');
});

test('an expired snapshot the server holds the key of: a new snapshot version with the same contents, and a timestamp over it', () => {
  const input = setup({ snapshotExpires: NOW - 1, timestampExpires: NOW + DAY });
  const files = planResign(input);
  assert.deepEqual(versions(files), [
    ['snapshot', 6],
    ['timestamp', 10],
  ]);
  const snapshot = parseSignedFile('snapshot', files[0]!.bytes);
  assert.deepEqual(snapshot.signed['meta'], input.snapshot.file.signed['meta']);
  assert.equal(snapshot.signed.expires, '2026-06-04T00:00:00Z');
  assert.ok(signatureCount(snapshot.message(), snapshot.signatures, rootRoleKeys(input.root, 'snapshot')).met);
  const ts = parseSignedFile('timestamp', files[1]!.bytes);
  assert.deepEqual(ts.signed['meta'], { snapshot: metaOf(files[0]!.bytes) });
});

test('an expired client-signed snapshot is left as it is; only a due timestamp is renewed', () => {
  assert.deepEqual(planResign(setup({ snapshotExpires: NOW - 1, timestampExpires: NOW + DAY, serverSnapshot: false })), []);
  assert.deepEqual(versions(planResign(setup({ snapshotExpires: NOW - 1, timestampExpires: NOW - 1, serverSnapshot: false }))), [['timestamp', 10]]);
});

test('the horizon makes files expiring soon due (the expiry watch)', () => {
  const input = { ...setup({ snapshotExpires: NOW + 10 * DAY, timestampExpires: NOW + DAY }), horizonMs: 2 * DAY };
  assert.deepEqual(versions(planResign(input)), [['timestamp', 10]]);
});

test('without the timestamp key nothing is planned', () => {
  const input = setup({ snapshotExpires: NOW - 1, timestampExpires: NOW - 1 });
  assert.deepEqual(planResign({ ...input, serverKeys: input.serverKeys.filter((k) => k.role === 'snapshot') }), []);
});
