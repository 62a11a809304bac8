/**
 * The stores against a real database (Postgres with TEST_DATABASE_URL, else the embedded
 * store): what goes in comes back out as domain values, fixed-width columns without their
 * padding, in the documented order; transaction-bound stores commit or roll back together.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { migrate } from '../../src/storage/migrate.js';
import { Stores } from '../../src/storage/stores.js';
import { sha256Hex } from '../../src/tuf/core/hashes.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let testDb: TestDatabase;
let database: Database;
let stores: Stores;

before(async () => {
  testDb = await createTestDatabase();
  database = await openDatabase({ url: testDb.url, dataDir: testDb.dataDir, connectRetrySeconds: 0 });
  await migrate(database);
  stores = new Stores(database.db);
});
after(async () => {
  await database?.close();
  await testDb?.drop();
});

const bytes = (text: string) => Buffer.from(text);
const write = (gun: string, files: { role: string; version: number; bytes: Buffer }[]) => stores.transaction((s) => s.metadata.insert(gun, files));

describe('MetadataStore', () => {
  const gun = 'registry.example.com/stores/meta';

  before(async () => {
    await write(gun, [
      { role: 'root', version: 1, bytes: bytes('root 1') },
      { role: 'targets', version: 1, bytes: bytes('targets 1') },
      { role: 'snapshot', version: 1, bytes: bytes('snapshot 1') },
      { role: 'timestamp', version: 1, bytes: bytes('timestamp 1') },
    ]);
    await write(gun, [
      { role: 'targets', version: 2, bytes: bytes('targets 2') },
      { role: 'timestamp', version: 2, bytes: bytes('timestamp 2') },
    ]);
  });

  test('a stored file comes back with its bytes, version, checksum and time, by role, version or checksum', async () => {
    const latest = await stores.metadata.latest(gun, 'targets');
    assert.ok(latest);
    assert.equal(latest.role, 'targets');
    assert.equal(latest.version, 2);
    assert.ok(Buffer.isBuffer(latest.data));
    assert.deepEqual(latest.data, bytes('targets 2'));
    assert.equal(latest.sha256, sha256Hex(bytes('targets 2')));
    assert.ok(latest.createdAt instanceof Date);
    assert.deepEqual((await stores.metadata.byVersion(gun, 'targets', 1))?.data, bytes('targets 1'));
    assert.equal((await stores.metadata.byChecksum(gun, 'targets', sha256Hex(bytes('targets 1'))))?.version, 1);
    assert.equal(await stores.metadata.byChecksum(gun, 'root', sha256Hex(bytes('targets 1'))), null, 'a checksum is looked up within its role');
    assert.equal(await stores.metadata.byVersion(gun, 'targets', 3), null);
    assert.equal(await stores.metadata.latest('registry.example.com/stores/none', 'root'), null);
  });

  test('files by checksum, latest versions per role, existence', async () => {
    const rows = await stores.metadata.byChecksums(gun, [sha256Hex(bytes('root 1')), sha256Hex(bytes('snapshot 1')), sha256Hex(bytes('nothing'))]);
    assert.deepEqual(rows.map((r) => r.role).sort(), ['root', 'snapshot']);
    assert.deepEqual(await stores.metadata.byChecksums(gun, []), []);
    assert.deepEqual(Object.fromEntries(await stores.metadata.latestVersions(gun)), { root: 1, snapshot: 1, targets: 2, timestamp: 2 });
    assert.equal(await stores.metadata.exists(gun), true);
    assert.equal(await stores.metadata.exists('registry.example.com/stores/none'), false);
  });

  test('every file of a repository, by role then version; checksums without the bytes', async () => {
    const all = await stores.metadata.allOf(gun);
    assert.deepEqual(
      all.map((r) => `${r.role} v${r.version}`),
      ['root v1', 'snapshot v1', 'targets v1', 'targets v2', 'timestamp v1', 'timestamp v2'],
    );
    const sums = await stores.metadata.checksumsOf(gun);
    assert.equal(sums.length, 6);
    for (const s of sums) assert.equal(s.sha256, sha256Hex(bytes(`${s.role} ${s.version}`)));
  });

  test('the newest file of a role as of a time', async () => {
    const ts2 = (await stores.metadata.byVersion(gun, 'timestamp', 2))!;
    assert.equal((await stores.metadata.latestAsOf(gun, 'timestamp', new Date(Date.now() + 60_000)))?.version, 2);
    // The database keeps microseconds, a Date milliseconds: a millisecond later is surely after.
    assert.equal((await stores.metadata.latestAsOf(gun, 'timestamp', new Date(ts2.createdAt.getTime() + 1)))?.version, 2);
    assert.equal(await stores.metadata.latestAsOf(gun, 'timestamp', new Date(0)), null);
  });

  test('each stored timestamp adds an update record to the changefeed', async () => {
    const records = (await stores.changefeed.page(gun, 0, 100)).map((r) => [r.Category, r.Version, r.SHA256]);
    assert.deepEqual(records, [
      ['update', 1, sha256Hex(bytes('timestamp 1'))],
      ['update', 2, sha256Hex(bytes('timestamp 2'))],
    ]);
  });

  test('imported files keep the checksum and time given, without padding, and add no changefeed record', async () => {
    const imported = 'registry.example.com/stores/imported';
    await stores.transaction((s) =>
      s.metadata.insertImported(imported, [
        { role: 'root', version: 1, sha256: 'abc', data: bytes('r'), createdAt: '2020-01-02T03:04:05.123456Z' },
        { role: 'timestamp', version: 1, sha256: sha256Hex(bytes('t')), data: bytes('t'), createdAt: null },
      ]),
    );
    const root = (await stores.metadata.byVersion(imported, 'root', 1))!;
    // char(64) pads "abc" with spaces in the database; the store hands back the value stored.
    assert.equal(root.sha256, 'abc');
    assert.equal(root.createdAt.toISOString(), '2020-01-02T03:04:05.123Z');
    assert.deepEqual((await stores.metadata.checksumsOf(imported)).map((r) => r.sha256).sort(), ['abc', sha256Hex(bytes('t'))].sort());
    assert.ok(Date.now() - (await stores.metadata.byVersion(imported, 'timestamp', 1))!.createdAt.getTime() < 60_000);
    assert.deepEqual(await stores.changefeed.page(imported, 0, 10), []);
  });

  test('repositories by name, with file counts and the time of the newest file', async () => {
    const other = 'registry.example.com/stores/a-first';
    await write(other, [{ role: 'root', version: 1, bytes: bytes('other root') }]);
    const names = await stores.metadata.repositories();
    assert.deepEqual(names, [...names].sort());
    assert.ok(names.includes(other) && names.includes(gun));
    const summaries = await stores.metadata.repositorySummaries();
    assert.deepEqual(
      summaries.map((s) => s.gun),
      names,
    );
    const mine = summaries.find((s) => s.gun === gun)!;
    assert.equal(mine.files, 6);
    assert.ok(mine.lastChange instanceof Date);
    assert.equal(mine.lastChange.getTime(), Math.max(...(await stores.metadata.allOf(gun)).map((r) => r.createdAt.getTime())));
  });

  test('deleting a repository removes every file and records one deletion; an unknown one records nothing', async () => {
    const doomed = 'registry.example.com/stores/doomed';
    await write(doomed, [
      { role: 'root', version: 1, bytes: bytes('d root') },
      { role: 'timestamp', version: 1, bytes: bytes('d ts') },
    ]);
    assert.equal(await stores.transaction((s) => s.metadata.deleteRepository(doomed)), 2);
    assert.equal(await stores.metadata.exists(doomed), false);
    assert.equal(await stores.transaction((s) => s.metadata.deleteRepository(doomed)), 0);
    const feed = await stores.changefeed.page(doomed, 0, 10);
    assert.deepEqual(
      feed.map((r) => [r.Category, r.Version, r.SHA256]),
      [
        ['update', 1, sha256Hex(bytes('d ts'))],
        ['deletion', 0, ''],
      ],
    );
  });

  test('the repository lock and change notifications need a transaction', async () => {
    await assert.rejects(stores.metadata.lockRepository(gun), /needs a transaction-bound store/);
    await assert.rejects(stores.metadata.announceChange(gun), /needs a transaction-bound store/);
    await stores.transaction(async (s) => {
      await s.metadata.lockRepository(gun);
      await s.metadata.announceChange(gun);
    });
  });
});

describe('ChangefeedStore', () => {
  const a = 'registry.example.com/stores/feed-a';
  const b = 'registry.example.com/stores/feed-b';
  let ids: string[] = [];

  before(async () => {
    for (let v = 1; v <= 3; v++) {
      await write(a, [{ role: 'timestamp', version: v, bytes: bytes(`a ts ${v}`) }]);
      await write(b, [{ role: 'timestamp', version: v, bytes: bytes(`b ts ${v}`) }]);
    }
    ids = (await stores.changefeed.page(null, 0, 1000)).filter((r) => r.GUN === a || r.GUN === b).map((r) => r.ID);
  });

  test('pages go forwards from after a change ID, oldest first', async () => {
    const page = await stores.changefeed.page(null, Number(ids[0]), 2);
    assert.deepEqual(
      page.map((r) => r.ID),
      ids.slice(1, 3),
    );
    assert.equal(typeof page[0]!.ID, 'string');
    assert.ok(!Number.isNaN(Date.parse(page[0]!.CreatedAt)));
  });

  test('a negative page size or change ID goes backwards, still oldest first', async () => {
    assert.deepEqual(
      (await stores.changefeed.page(null, -1, -2)).map((r) => r.ID),
      ids.slice(-2),
    );
    assert.deepEqual(
      (await stores.changefeed.page(null, Number(ids[3]), -2)).map((r) => r.ID),
      ids.slice(1, 3),
    );
  });

  test('a repository filter keeps only its records', async () => {
    const page = await stores.changefeed.page(a, 0, 100);
    assert.deepEqual(
      page.map((r) => [r.GUN, r.Version]),
      [
        [a, 1],
        [a, 2],
        [a, 3],
      ],
    );
  });
});

describe('ServerKeyStore', () => {
  const gun = 'registry.example.com/stores/keys';
  const key = (keyId: string, role: 'timestamp' | 'snapshot', kekId = 'kek-1') => ({
    keyId,
    gun,
    role,
    keytype: 'ecdsa',
    publicKey: `public ${keyId}`,
    privateKey: Buffer.from(`sealed ${keyId}`),
    kekId,
  });

  before(async () => {
    // Short IDs: char(64) pads them, and the store must hand them back as they went in.
    await stores.serverKeys.insert(key('k-ts-1', 'timestamp'));
    await stores.serverKeys.insert(key('k-sn-1', 'snapshot'));
    await stores.serverKeys.insert(key('k-ts-2', 'timestamp', 'kek-2'));
  });

  test('a repository’s keys come back oldest first, with their encrypted part and unpadded IDs', async () => {
    const rows = await stores.serverKeys.ofRepository(gun);
    assert.deepEqual(
      rows.map((r) => r.keyId),
      ['k-ts-1', 'k-sn-1', 'k-ts-2'],
    );
    const first = rows[0]!;
    assert.ok(Buffer.isBuffer(first.privateKey));
    assert.deepEqual(first.privateKey, Buffer.from('sealed k-ts-1'));
    assert.equal(first.publicKey, 'public k-ts-1');
    assert.equal(first.kekId, 'kek-1');
    assert.equal(first.lastUsed, null);
    assert.ok(first.createdAt instanceof Date);
  });

  test('the pending key of a role is the newest unused one; marking it used moves on', async () => {
    assert.equal((await stores.serverKeys.pending(gun, 'timestamp'))?.keyId, 'k-ts-2');
    await stores.serverKeys.markUsed(['k-ts-2']);
    assert.equal((await stores.serverKeys.pending(gun, 'timestamp'))?.keyId, 'k-ts-1');
    const used = (await stores.serverKeys.ofRepository(gun)).find((k) => k.keyId === 'k-ts-2')!;
    assert.ok(used.lastUsed instanceof Date);
    await stores.serverKeys.markUsed([]);
  });

  test('listing, lookup by ID and the newest key', async () => {
    const listed = await stores.serverKeys.list(gun);
    assert.deepEqual(
      listed.map((k) => k.keyId),
      ['k-ts-1', 'k-sn-1', 'k-ts-2'],
    );
    assert.equal('privateKey' in listed[0]!, false, 'a listing carries no private part');
    const all = await stores.serverKeys.list();
    assert.deepEqual(
      all.map((k) => k.gun),
      [...all.map((k) => k.gun)].sort(),
    );
    assert.deepEqual(
      (await stores.serverKeys.byIds(['k-sn-1', 'missing'])).map((k) => [k.keyId, k.role, k.publicKey]),
      [['k-sn-1', 'snapshot', 'public k-sn-1']],
    );
    assert.deepEqual(await stores.serverKeys.byIds([]), []);
    assert.equal((await stores.serverKeys.newest())?.keyId, 'k-ts-2');
  });

  test('keys per KEK, and re-encryption under a row lock', async () => {
    const counts = Object.fromEntries(await stores.serverKeys.countPerKek());
    assert.equal(counts['kek-1'], 2);
    assert.equal(counts['kek-2'], 1);
    await assert.rejects(stores.serverKeys.allForUpdate(), /needs a transaction-bound store/);
    await stores.transaction(async (s) => {
      const rows = await s.serverKeys.allForUpdate();
      assert.deepEqual(
        rows.map((r) => r.keyId),
        [...rows.map((r) => r.keyId)].sort(),
        'by key ID',
      );
      await s.serverKeys.replaceEncrypted('k-ts-2', Buffer.from('resealed'), 'kek-1');
    });
    const row = (await stores.serverKeys.ofRepository(gun)).find((k) => k.keyId === 'k-ts-2')!;
    assert.equal(row.kekId, 'kek-1');
    assert.deepEqual(row.privateKey, Buffer.from('resealed'));
  });

  test('imported keys keep the times given', async () => {
    await stores.serverKeys.insertImported([
      {
        ...key('k-imported', 'snapshot'),
        gun: 'registry.example.com/stores/keys-imported',
        createdAt: '2021-05-06T07:08:09Z',
        lastUsed: '2022-01-01T00:00:00Z',
      },
    ]);
    const [row] = await stores.serverKeys.ofRepository('registry.example.com/stores/keys-imported');
    assert.equal(row?.keyId, 'k-imported');
    assert.equal(row?.createdAt.toISOString(), '2021-05-06T07:08:09.000Z');
    assert.equal(row?.lastUsed?.toISOString(), '2022-01-01T00:00:00.000Z');
    await stores.serverKeys.insertImported([]);
  });
});

describe('AuditStore', () => {
  const gun = 'registry.example.com/stores/audit';

  test('records come back newest first, filtered by repository and time, detail as JSON', async () => {
    const before = new Date(Date.now() - 1000);
    await stores.audit.append(gun, 'update', { subject: 'alice', address: '10.0.0.1', requestId: 'r-1' }, { roles: [{ role: 'targets', version: 2 }] });
    await stores.audit.append(gun, 'delete', { subject: 'bob' }, { files: 3 });
    await stores.audit.append('registry.example.com/stores/other', 'update', { subject: 'carol' }, {});
    const records = await stores.audit.read({ gun, limit: 10 });
    assert.deepEqual(
      records.map((r) => [r.action, r.subject, r.address, r.requestId]),
      [
        ['delete', 'bob', null, null],
        ['update', 'alice', '10.0.0.1', 'r-1'],
      ],
    );
    assert.deepEqual(records[1]!.detail, { roles: [{ role: 'targets', version: 2 }] });
    assert.equal(typeof records[0]!.id, 'string');
    assert.ok(!Number.isNaN(Date.parse(records[0]!.time)));
    assert.equal((await stores.audit.read({ gun, limit: 1 })).length, 1);
    assert.equal((await stores.audit.read({ gun, since: before, limit: 10 })).length, 2);
    assert.equal((await stores.audit.read({ gun, until: before, limit: 10 })).length, 0);
    assert.ok((await stores.audit.read({ limit: 10 })).some((r) => r.subject === 'carol'));
  });
});

describe('SettingsStore', () => {
  test('a setting is absent, then initialised once, then overwritten', async () => {
    assert.equal(await stores.settings.read('kek_id'), null);
    assert.equal(await stores.settings.init('kek_id', 'first'), 'first');
    assert.equal(await stores.settings.init('kek_id', 'second'), 'first', 'init keeps the value in force');
    await stores.settings.write('kek_id', 'third');
    assert.equal(await stores.settings.read('kek_id'), 'third');
    assert.equal(await stores.transaction((s) => s.settings.read('kek_id', 'update')), 'third');
    assert.equal(await stores.transaction((s) => s.settings.read('kek_id', 'share')), 'third');
  });
});

describe('Stores', () => {
  test('writes through transaction-bound stores commit together or not at all', async () => {
    const gun = 'registry.example.com/stores/rollback';
    await assert.rejects(
      stores.transaction(async (s) => {
        await s.metadata.insert(gun, [{ role: 'timestamp', version: 1, bytes: bytes('rolled back') }]);
        await s.audit.append(gun, 'update', { subject: 'x' }, {});
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal(await stores.metadata.exists(gun), false);
    assert.deepEqual(await stores.audit.read({ gun, limit: 10 }), []);
    assert.deepEqual(await stores.changefeed.page(gun, 0, 10), []);
    await stores.transaction(async (s) => {
      await s.metadata.insert(gun, [{ role: 'timestamp', version: 1, bytes: bytes('kept') }]);
      await assert.rejects(
        s.transaction(async () => null),
        /already bound to a transaction/,
      );
    });
    assert.equal(await stores.metadata.exists(gun), true);
  });

  test(
    'an exclusive job runs once at a time across sessions',
    { skip: !process.env.TEST_DATABASE_URL ? 'needs Postgres (the embedded store has one connection)' : false },
    async () => {
      const key = 0x7e57;
      const inner = await stores.tryExclusive(key, async () => stores.tryExclusive(key, async () => 'ran twice'));
      assert.equal(inner, null, 'a second session does not get the lock while the first holds it');
      assert.equal(await stores.tryExclusive(key, async () => 'ran'), 'ran', 'released when the job ends');
    },
  );
});
