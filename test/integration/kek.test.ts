/**
 * The store's key-encryption key (KEK): recorded by fingerprint on first start; a server given
 * another KEK refuses to start (exit 2, one line naming the setting) and changes nothing;
 * `signet keys rekey` re-encrypts every server key under a new KEK in one transaction, finishes
 * a store whose keys ended up under two KEKs, and leaves everything as it was when refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { runSignet } from '../support/cli.js';
import { spawnServer } from '../support/server.js';
import { signFile, targetsDoc } from '../support/tuf-kit.js';
import { KeyEncryptionKey } from '../../src/signing/key-encryption.js';
import { KeyService } from '../../src/signing/key-service.js';
import { openDatabase } from '../../src/storage/database.js';
import { Stores } from '../../src/storage/stores.js';

/** `signet` with the settings every case here shares. */
const signet = (env: Record<string, string>, ...args: string[]) =>
  runSignet(args, { SIGNET_PORT: '0', SIGNET_LOG_LEVEL: 'error', SIGNET_EXPIRY_SCAN_INTERVAL: '0', ...env });

const kekHex = () => randomBytes(32).toString('hex');
const fingerprint = (hex: string) => new KeyEncryptionKey(Buffer.from(hex, 'hex')).id;

let database: TestDatabase;
const store = () => ({ SIGNET_DATA_DIR: database.dataDir, DATABASE_URL: database.url ?? '' });

/** Fingerprints of the KEKs the store's keys are under, and what the store records. */
async function kekState(): Promise<{ keys: Record<string, number>; recorded: string | null; rows: string }> {
  const db = await openDatabase({ url: database.url, dataDir: database.dataDir });
  try {
    const rows = await db.db.selectFrom('server_keys').select(['key_id', 'kek_id', 'private_key']).orderBy('key_id').execute();
    const keys: Record<string, number> = {};
    for (const r of rows) keys[r.kek_id] = (keys[r.kek_id] ?? 0) + 1;
    const setting = await db.db.selectFrom('store_settings').select('value').where('name', '=', 'kek_id').executeTakeFirst();
    return { keys, recorded: setting?.value ?? null, rows: rows.map((r) => `${r.key_id}:${r.kek_id}:${Buffer.from(r.private_key).toString('hex')}`).join(',') };
  } finally {
    await db.close();
  }
}

/** Start a server with `kek`, publish a new targets version to each repository, stop it. */
async function publishWith(kek: string, repos: TestRepository[], version: number): Promise<void> {
  const server = await spawnServer({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: kek, SIGNET_EXPIRY_SCAN_INTERVAL: '0' });
  try {
    for (const repo of repos) {
      const res = await postUpdate(server.url, repo.gun, { targets: signFile(targetsDoc({ version }), [repo.targetsKey]) });
      assert.equal(res.status, 200, `${repo.gun} v${version}: ${res.text}`);
    }
  } finally {
    await server.stop();
  }
}

describe('the store records its key-encryption key', () => {
  const A = kekHex();
  const B = kekHex();
  const C = kekHex();
  let repos: TestRepository[] = [];
  let dir: string;

  before(async () => {
    database = await createTestDatabase();
    dir = database.dataDir;
    const server = await spawnServer({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A });
    try {
      repos = [await createRepository(server.url, 'registry.example.com/kek/one', { serverSnapshot: true })];
    } finally {
      await server.stop();
    }
  });
  after(async () => {
    await database?.drop();
  });

  test('the first start records the fingerprint of its KEK, not the key', async () => {
    const state = await kekState();
    assert.equal(state.recorded, fingerprint(A));
    assert.deepEqual(state.keys, { [fingerprint(A)]: 2 });
    assert.doesNotMatch(state.rows + (state.recorded ?? ''), new RegExp(A));
  });

  test('a start with another KEK exits 2 within seconds, naming the setting and both fingerprints; nothing changes', async () => {
    const before = await kekState();
    const r = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: B }, 'serve');
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    assert.doesNotMatch(r.stdout, /listening/);
    assert.match(
      r.stderr,
      new RegExp(
        `SIGNET_KEY_ENCRYPTION_KEY \\(fingerprint ${fingerprint(B)}\\) is not the key-encryption key of this store \\(fingerprint ${fingerprint(A)}\\)`,
      ),
    );
    assert.match(r.stderr, /signet keys rekey/);
    assert.doesNotMatch(r.stderr, new RegExp(B));
    assert.deepEqual(await kekState(), before);
  });

  test('admin commands refuse the wrong KEK alike (exit 2)', async () => {
    const r = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: B }, 'keys', 'list');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /is not the key-encryption key of this store/);
  });

  test('a store whose keys ended up under two KEKs refuses to start until rekey folds them into one', async () => {
    // What a start under the wrong KEK did before the fingerprint was recorded: a new
    // repository's keys under B beside the old ones under A.
    const db = await openDatabase({ url: database.url, dataDir: dir });
    try {
      await db.db.deleteFrom('store_settings').execute();
      await new KeyService(new KeyEncryptionKey(Buffer.from(B, 'hex')), 'ed25519').create(new Stores(db.db), 'registry.example.com/kek/two', 'timestamp');
      await new KeyService(new KeyEncryptionKey(Buffer.from(B, 'hex')), 'ed25519').create(new Stores(db.db), 'registry.example.com/kek/two', 'snapshot');
    } finally {
      await db.close();
    }
    const refused = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A }, 'serve');
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /encrypted under 2 different key-encryption keys/);

    const fileA = path.join(dir, 'kek-a');
    const fileB = path.join(dir, 'kek-b');
    writeFileSync(fileA, A + '\n', { mode: 0o600 });
    writeFileSync(fileB, B + '\n', { mode: 0o600 });
    // Without B the keys under it cannot be opened: refused, nothing changed.
    const before = await kekState();
    const partial = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A }, 'keys', 'rekey', '--new-key-file', fileA);
    assert.equal(partial.code, 1, partial.stderr);
    assert.match(partial.stderr, new RegExp(`2 under fingerprint ${fingerprint(B)}\\): pass each with --old-key-file; nothing was changed`));
    assert.deepEqual(await kekState(), before);

    const r = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A }, 'keys', 'rekey', '--new-key-file', fileA, '--old-key-file', fileB, '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { keys: number; reencrypted: number; alreadyUnderNewKey: number; kekId: string };
    assert.deepEqual([report.keys, report.reencrypted, report.alreadyUnderNewKey, report.kekId], [4, 2, 2, fingerprint(A)]);
    assert.deepEqual((await kekState()).keys, { [fingerprint(A)]: 4 });
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(`${A}|${B}`), 'no key is printed');

    // Both repositories' server keys sign again under A.
    const server = await spawnServer({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A });
    try {
      repos.push(await createRepository(server.url, 'registry.example.com/kek/two', { serverSnapshot: true }));
    } finally {
      await server.stop();
    }
    await publishWith(A, repos, 2);
  });

  test('rekey to a new KEK: every key re-encrypted in one step; the old KEK is then refused and the new one serves', async () => {
    const fileC = path.join(dir, 'kek-c');
    writeFileSync(fileC, C + '\n', { mode: 0o600 });
    const before = await kekState();
    const r = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A }, 'keys', 'rekey', '--new-key-file', fileC);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^4 server keys: 4 re-encrypted, 0 already under the new key$/m);
    assert.match(r.stdout, /set SIGNET_KEY_ENCRYPTION_KEY to the new key/);
    const after = await kekState();
    assert.deepEqual(after.keys, { [fingerprint(C)]: 4 });
    assert.equal(after.recorded, fingerprint(C));
    assert.notEqual(after.rows, before.rows);

    const old = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: A }, 'serve');
    assert.equal(old.code, 2);
    assert.match(old.stderr, /is not the key-encryption key of this store/);
    await publishWith(C, repos, 3);

    // Run again: nothing left to do, the keys are checked.
    const again = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: C }, 'keys', 'rekey', '--new-key-file', fileC);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^4 server keys: 0 re-encrypted, 4 already under the new key$/m);
    assert.equal((await kekState()).rows, after.rows);
  });

  test('rekey usage mistakes exit 2 before touching the store', async () => {
    for (const args of [[], ['--new-key-file'], ['--new-key-file', '/nonexistent/kek'], ['--bogus']]) {
      const r = await signet({ ...store(), SIGNET_KEY_ENCRYPTION_KEY: C }, 'keys', 'rekey', ...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, /new-key-file|bogus|cannot read/, args.join(' '));
    }
  });
});

describe('rekey with the generated KEK file', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  test('the file in the data directory is replaced after the commit, and the server starts with it', async () => {
    const env = { SIGNET_DATA_DIR: db.dataDir, DATABASE_URL: db.url ?? '', SIGNET_KEY_ENCRYPTION_KEY: '' };
    const server = await spawnServer(env);
    let repo: TestRepository;
    try {
      repo = await createRepository(server.url, 'registry.example.com/kek/file', { serverSnapshot: true });
    } finally {
      await server.stop();
    }
    const kekFile = path.join(db.dataDir, 'signet-kek');
    const oldKek = readFileSync(kekFile, 'utf8').trim();
    const next = kekHex();
    const nextFile = path.join(db.dataDir, 'next-kek');
    writeFileSync(nextFile, next + '\n', { mode: 0o600 });
    const r = await signet(env, 'keys', 'rekey', '--new-key-file', nextFile);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${kekFile.replace(/[.]/g, '\\.')} now holds the new key`));
    assert.equal(readFileSync(kekFile, 'utf8').trim(), next);
    assert.notEqual(oldKek, next);
    const again = await spawnServer(env);
    try {
      const res = await postUpdate(again.url, repo.gun, { targets: signFile(targetsDoc({ version: 2 }), [repo.targetsKey]) });
      assert.equal(res.status, 200, res.text);
    } finally {
      await again.stop();
    }
  });
});
