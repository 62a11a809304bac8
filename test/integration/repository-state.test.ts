/**
 * A repository's current state read from a real store (Postgres with TEST_DATABASE_URL, else
 * the embedded store), and the service context around it: the repository lock invalidates the
 * current-metadata cache, and each context has its own writer queue and caches.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createContext, withRepositoryLock, type ServiceContext } from '../../src/service/context.js';
import { currentChain, currentRoleFile, loadRepositoryState, reachableTargetsRoles } from '../../src/service/repository-state.js';
import { KeyEncryptionKey } from '../../src/signing/key-encryption.js';
import { KeyService } from '../../src/signing/key-service.js';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { migrate } from '../../src/storage/migrate.js';
import { sha256Hex } from '../../src/tuf/core/hashes.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ecdsaKey, inDays, metaOf, rootDoc, signFile, snapshotDoc, targetsDoc } from '../support/tuf-kit.js';

let testDb: TestDatabase;
let database: Database;
let ctx: ServiceContext;

const contextOver = (db: Database) =>
  createContext(db, new KeyService(new KeyEncryptionKey(randomBytes(32)), 'ed25519'), { snapshotMs: 86400_000, timestampMs: 3600_000 });

before(async () => {
  testDb = await createTestDatabase();
  database = await openDatabase({ url: testDb.url, dataDir: testDb.dataDir, connectRetrySeconds: 0 });
  await migrate(database);
  ctx = contextOver(database);
  // Postgres contexts wait for change notifications before caching; these tests drive the cache directly.
  ctx.current.setEnabled(true);
  await storeRepository();
});
after(async () => {
  await database?.close();
  await testDb?.drop();
});

const key = ecdsaKey();
const GUN = 'registry.example.com/state/app';
const root = signFile(rootDoc({ root: [key], targets: [key], snapshot: [key], timestamp: [key] }), [key]);
const oldTargets = signFile(targetsDoc({ version: 1 }), [key]);
const targets = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/releases', keys: [key] }] }), [key]);
const releases = signFile(targetsDoc({ version: 1, delegations: [{ name: 'targets/releases/beta', keys: [key] }] }), [key]);
const beta = signFile(targetsDoc({ version: 1 }), [key]);
// Listed by the snapshot but no longer delegated by anything a client reaches.
const dropped = signFile(targetsDoc({ version: 1 }), [key]);
const snapshot = signFile(
  snapshotDoc({ version: 2, files: { root, targets, 'targets/releases': releases, 'targets/releases/beta': beta, 'targets/dropped': dropped } }),
  [key],
);
const timestamp = signFile({ _type: 'Timestamp', expires: inDays(14), meta: { snapshot: metaOf(snapshot) }, version: 3 }, [key]);

async function storeRepository() {
  await ctx.stores.transaction((s) =>
    s.metadata.insert(GUN, [
      { role: 'root', version: 1, bytes: root },
      { role: 'targets', version: 1, bytes: oldTargets },
      { role: 'targets', version: 2, bytes: targets },
      { role: 'targets/releases', version: 1, bytes: releases },
      { role: 'targets/releases/beta', version: 1, bytes: beta },
      { role: 'targets/dropped', version: 1, bytes: dropped },
      { role: 'snapshot', version: 2, bytes: snapshot },
      { role: 'timestamp', version: 3, bytes: timestamp },
    ]),
  );
}

describe('repository state', () => {
  test('the current chain is the newest timestamp and the snapshot it names', async () => {
    const chain = await currentChain(ctx.stores.metadata, ctx.cache, GUN);
    assert.ok(chain?.snapshot);
    assert.equal(chain.timestamp.row.version, 3);
    assert.equal(chain.timestamp.file.version, 3);
    assert.equal(chain.snapshot.row.sha256, sha256Hex(snapshot));
    assert.equal(chain.snapshot.file.role, 'snapshot');
    assert.equal(await currentChain(ctx.stores.metadata, ctx.cache, 'registry.example.com/state/none'), null);
  });

  test('a timestamp naming a snapshot that is not stored gives a chain without a snapshot', async () => {
    const gun = 'registry.example.com/state/dangling';
    const ts = signFile({ _type: 'Timestamp', expires: inDays(14), meta: { snapshot: metaOf(Buffer.from('never stored')) }, version: 1 }, [key]);
    await ctx.stores.transaction((s) => s.metadata.insert(gun, [{ role: 'timestamp', version: 1, bytes: ts }]));
    const chain = await currentChain(ctx.stores.metadata, ctx.cache, gun);
    assert.equal(chain?.timestamp.row.version, 1);
    assert.equal(chain?.snapshot, null);
    const state = await loadRepositoryState(ctx.stores.metadata, ctx.cache, gun);
    assert.equal(state.root, null);
    assert.equal(state.snapshot, null);
    assert.equal(state.targets.size, 0);
    assert.deepEqual(Object.fromEntries(state.latestVersions), { timestamp: 1 });
  });

  test('the state holds the root and targets roles the current snapshot lists, not older versions', async () => {
    const state = await loadRepositoryState(ctx.stores.metadata, ctx.cache, GUN);
    assert.equal(state.root?.role, 'root');
    assert.equal(state.snapshot?.version, 2);
    assert.deepEqual([...state.targets.keys()].sort(), ['targets', 'targets/dropped', 'targets/releases', 'targets/releases/beta']);
    assert.equal(state.targets.get('targets')?.version, 2, 'the version the snapshot names, not v1');
    assert.deepEqual(Object.fromEntries(state.latestVersions), {
      root: 1,
      snapshot: 2,
      targets: 2,
      'targets/dropped': 1,
      'targets/releases': 1,
      'targets/releases/beta': 1,
      timestamp: 3,
    });
  });

  test('asked for some targets roles, the state reads only those (and root)', async () => {
    const state = await loadRepositoryState(ctx.stores.metadata, ctx.cache, GUN, new Set(['targets/releases']));
    assert.ok(state.root);
    assert.deepEqual([...state.targets.keys()], ['targets/releases']);
    const none = await loadRepositoryState(ctx.stores.metadata, ctx.cache, GUN, new Set());
    assert.equal(none.targets.size, 0);
  });

  test('reachable targets roles follow delegations from targets, skipping what nothing delegates', async () => {
    const state = await loadRepositoryState(ctx.stores.metadata, ctx.cache, GUN);
    assert.deepEqual(
      reachableTargetsRoles(state).map((f) => f.role),
      ['targets', 'targets/releases', 'targets/releases/beta'],
    );
    const partial = await loadRepositoryState(ctx.stores.metadata, ctx.cache, GUN, new Set(['targets/releases']));
    assert.deepEqual(reachableTargetsRoles(partial), [], 'nothing is reachable without targets itself');
  });

  test('the current file of a role is the one the current snapshot lists', async () => {
    assert.equal((await currentRoleFile(ctx.stores.metadata, ctx.cache, GUN, 'targets'))?.version, 2);
    assert.equal(await currentRoleFile(ctx.stores.metadata, ctx.cache, GUN, 'targets/unlisted'), null);
  });
});

describe('service context', () => {
  test('the repository lock drops the repository from the current-metadata cache, also when the work fails', async () => {
    const chain = await currentChain(ctx.stores.metadata, ctx.cache, GUN);
    ctx.current.storeChain(GUN, ctx.current.version(GUN), chain);
    assert.ok(ctx.current.chain(GUN));
    await withRepositoryLock(ctx, GUN, async () => null, { changesMetadata: false });
    assert.ok(ctx.current.chain(GUN), 'work that changes no metadata leaves the cache');
    await withRepositoryLock(ctx, GUN, async () => null);
    assert.equal(ctx.current.chain(GUN), undefined);

    ctx.current.storeChain(GUN, ctx.current.version(GUN), chain);
    await assert.rejects(
      withRepositoryLock(ctx, GUN, async () => {
        throw new Error('failed');
      }),
      /failed/,
    );
    assert.equal(ctx.current.chain(GUN), undefined);
    assert.equal(ctx.writers.size, 0, 'the writer queue keeps no entry once done');
  });

  test('work under the lock gets stores bound to its transaction: a failure rolls all of it back', async () => {
    const gun = 'registry.example.com/state/rolled-back';
    await assert.rejects(
      withRepositoryLock(ctx, gun, async (stores) => {
        await stores.metadata.insert(gun, [{ role: 'root', version: 1, bytes: root }]);
        await stores.audit.append(gun, 'update', { subject: 'test' }, {});
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal(await ctx.stores.metadata.exists(gun), false);
    assert.deepEqual(await ctx.stores.audit.read({ gun, limit: 10 }), []);
  });

  test('writers of one repository queue within a context; another context has its own queue and caches', async () => {
    const other = contextOver(database);
    assert.notEqual(other.writers, ctx.writers);
    assert.notEqual(other.current, ctx.current);
    assert.notEqual(other.cache, ctx.cache);

    const release = await ctx.writers.acquire(GUN);
    let sameContextRan = false;
    const queued = withRepositoryLock(ctx, GUN, async () => (sameContextRan = true), { changesMetadata: false });
    // Another context's writer is not held up by this context's queue.
    assert.equal(await withRepositoryLock(other, GUN, async () => 'other ran', { changesMetadata: false }), 'other ran');
    assert.equal(sameContextRan, false, 'the same context waits for the holder');
    release();
    await queued;
    assert.equal(sameContextRan, true);
    assert.equal(ctx.writers.size, 0);
    assert.equal(other.writers.size, 0);
  });
});

describe('reads under the repository lock', () => {
  const newTimestamp = (version: number) => signFile({ _type: 'Timestamp', expires: inDays(14), meta: { snapshot: metaOf(snapshot) }, version }, [key]);

  test('within the transaction, a file it stored is the newest of its role and is found by checksum without another query', async () => {
    const gun = 'registry.example.com/state/locked-reads';
    await ctx.stores.transaction((s) => s.metadata.insert(gun, [{ role: 'timestamp', version: 1, bytes: newTimestamp(1) }]));
    await withRepositoryLock(ctx, gun, async (stores) => {
      assert.equal((await stores.metadata.latest(gun, 'timestamp'))?.version, 1);
      assert.deepEqual(Object.fromEntries(await stores.metadata.latestVersions(gun)), { timestamp: 1 });
      const ts2 = newTimestamp(2);
      await stores.metadata.insert(gun, [{ role: 'timestamp', version: 2, bytes: ts2 }]);
      const latest = await stores.metadata.latest(gun, 'timestamp');
      assert.equal(latest?.version, 2);
      assert.ok(latest?.data.equals(ts2));
      assert.ok(latest?.createdAt instanceof Date, 'the storage time comes back from the insert');
      assert.deepEqual(Object.fromEntries(await stores.metadata.latestVersions(gun)), { timestamp: 2 });
      const found = await stores.metadata.byRoleChecksums(gun, new Map([['timestamp', sha256Hex(ts2)]]));
      assert.deepEqual(
        found.map((r) => r.version),
        [2],
      );
    });
    // The same answers as a fresh read outside the transaction.
    const fresh = await ctx.stores.metadata.latest(gun, 'timestamp');
    assert.equal(fresh?.version, 2);
  });

  test('what a failed transaction stored is not remembered: the next one reads what the database holds', async () => {
    const gun = 'registry.example.com/state/locked-reads-failed';
    await ctx.stores.transaction((s) => s.metadata.insert(gun, [{ role: 'timestamp', version: 1, bytes: newTimestamp(1) }]));
    // A first transaction that commits, so that the embedded store keeps its reads.
    await withRepositoryLock(ctx, gun, async (stores) => assert.equal((await stores.metadata.latest(gun, 'timestamp'))?.version, 1));
    await assert.rejects(
      withRepositoryLock(ctx, gun, async (stores) => {
        await stores.metadata.insert(gun, [{ role: 'timestamp', version: 2, bytes: newTimestamp(2) }]);
        assert.equal((await stores.metadata.latest(gun, 'timestamp'))?.version, 2);
        throw new Error('abort after the insert');
      }),
      /abort after the insert/,
    );
    await withRepositoryLock(ctx, gun, async (stores) => {
      assert.equal((await stores.metadata.latest(gun, 'timestamp'))?.version, 1, 'the rolled-back version is not seen');
      assert.deepEqual(Object.fromEntries(await stores.metadata.latestVersions(gun)), { timestamp: 1 });
    });
  });

  test('a deleted repository is not remembered', async () => {
    const gun = 'registry.example.com/state/locked-reads-deleted';
    await ctx.stores.transaction((s) => s.metadata.insert(gun, [{ role: 'timestamp', version: 1, bytes: newTimestamp(1) }]));
    await withRepositoryLock(ctx, gun, async (stores) => {
      assert.equal((await stores.metadata.latest(gun, 'timestamp'))?.version, 1);
      await stores.metadata.deleteRepository(gun);
      assert.equal(await stores.metadata.latest(gun, 'timestamp'), null);
    });
    await withRepositoryLock(ctx, gun, async (stores) => assert.equal(await stores.metadata.latest(gun, 'timestamp'), null));
  });

  test('server keys remembered under the lock know when they were marked used', async () => {
    const gun = 'registry.example.com/state/locked-keys';
    await ctx.keys.pendingOrCreate(ctx.stores, gun, 'timestamp');
    await withRepositoryLock(
      ctx,
      gun,
      async (stores) => {
        const [k] = await stores.serverKeys.ofRepository(gun);
        assert.ok(k);
        assert.equal(k.lastUsed, null);
        await stores.serverKeys.markUsed([k.keyId]);
        const [again] = await stores.serverKeys.ofRepository(gun);
        assert.ok(again?.lastUsed instanceof Date, 'the remembered key knows it was marked');
      },
      { changesMetadata: false },
    );
    const [stored] = await ctx.stores.serverKeys.ofRepository(gun);
    assert.ok(stored?.lastUsed instanceof Date);
    assert.equal(await ctx.stores.serverKeys.pending(gun, 'timestamp'), null, 'a used key is no longer handed out as pending');
  });
});
