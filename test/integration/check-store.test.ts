/**
 * `signet check` verifies each repository as a client would read it (the trusted set): root
 * rotations signed by the old root, and the current timestamp, snapshot, targets and
 * delegations signed by their roles' keys. Rows written around Signet that keep every hash
 * consistent but carry the wrong signatures are caught, with the trusted set's code.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkStore } from '../../src/service/check-store.js';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { certKey, ecdsaKey, metaOf, rootDoc, signFile, snapshotDoc, targetFile, targetsDoc, inDays } from '../support/tuf-kit.js';

let server: TestServer;
let plain: TestRepository;
let delegated: TestRepository;
let rotated: TestRepository;
const releases = ecdsaKey();

before(async () => {
  server = await startTestServer();
  plain = await createRepository(server.url, 'registry.example.com/check/plain', { serverSnapshot: true });
  delegated = await createRepository(server.url, 'registry.example.com/check/delegated', { serverSnapshot: true });
  const targets = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/releases', keys: [releases], paths: [''] }] }), [delegated.targetsKey]);
  const release = signFile(targetsDoc({ targets: { v1: targetFile('v1') } }), [releases]);
  assert.equal((await postUpdate(server.url, delegated.gun, { targets, 'targets/releases': release })).status, 200);
  // A root rotation signed by the old and the new root key.
  rotated = await createRepository(server.url, 'registry.example.com/check/rotated', { serverSnapshot: true });
  const newRoot = certKey({ commonName: rotated.gun });
  const root2 = signFile(rootDoc({ ...rotated.rootSpec, version: 2, root: [newRoot] }), [rotated.rootKey, newRoot]);
  assert.equal((await postUpdate(server.url, rotated.gun, { root: root2 })).status, 200);
});
after(async () => {
  await server?.close();
});

const errorsOf = async (gun: string) => (await checkStore(server.context, gun)).problems.filter((p) => p.severity === 'error').map((p) => p.message);

test('repositories published through Signet verify as a client reads them: 0 errors', async () => {
  for (const repo of [plain, delegated, rotated]) assert.deepEqual(await errorsOf(repo.gun), [], repo.gun);
});

test('a timestamp row written around Signet, signed by a key the root does not list, is an error [THRESHOLD]', async () => {
  const db = server.context.database.db;
  const current = await db
    .selectFrom('tuf_files')
    .select(['data', 'version'])
    .where('gun', '=', plain.gun)
    .where('role', '=', 'timestamp')
    .orderBy('version', 'desc')
    .executeTakeFirstOrThrow();
  const snapshot = (JSON.parse(Buffer.from(current.data).toString()) as { signed: { meta: unknown } }).signed.meta;
  const forged = signFile({ _type: 'Timestamp', expires: inDays(14), meta: snapshot, version: current.version + 1 }, [ecdsaKey()]);
  await server.context.stores.transaction((stores) => stores.metadata.insert(plain.gun, [{ role: 'timestamp', version: current.version + 1, bytes: forged }]));
  const errors = await errorsOf(plain.gun);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, /does not verify as a client reads it: timestamp: 0 valid signatures from the root's timestamp keys, 1 needed \[THRESHOLD\]$/);
});

test('a root row not signed by the previous root is an error, even with every hash in place', async () => {
  const db = server.context.database.db;
  const gun = delegated.gun;
  // A takeover: root v2 signed only by a new key, with snapshot and timestamp to match.
  const attacker = certKey({ commonName: gun });
  const snapshotKey = ecdsaKey();
  const timestampKey = ecdsaKey();
  const root2 = signFile(rootDoc({ ...delegated.rootSpec, version: 2, root: [attacker], snapshot: [snapshotKey], timestamp: [timestampKey] }), [attacker]);
  const targets = signFile(targetsDoc({ version: 9 }), [delegated.targetsKey]);
  const snapshot = signFile(snapshotDoc({ version: 9, files: { root: root2, targets } }), [snapshotKey]);
  const versions = await db
    .selectFrom('tuf_files')
    .select(['role', (eb) => eb.fn.max('version').as('v')])
    .where('gun', '=', gun)
    .groupBy('role')
    .execute();
  const ts = Number(versions.find((r) => r.role === 'timestamp')!.v) + 1;
  const timestamp = signFile({ _type: 'Timestamp', expires: inDays(14), meta: { snapshot: metaOf(snapshot) }, version: ts }, [timestampKey]);
  await server.context.stores.transaction((stores) =>
    stores.metadata.insert(gun, [
      { role: 'root', version: 2, bytes: root2 },
      { role: 'targets', version: 9, bytes: targets },
      { role: 'snapshot', version: 9, bytes: snapshot },
      { role: 'timestamp', version: ts, bytes: timestamp },
    ]),
  );
  const errors = await errorsOf(gun);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, /root: 0 valid signatures from the trusted root v1's keys, 1 needed \[THRESHOLD\]$/);
});
