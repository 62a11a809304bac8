/**
 * Private keys never appear in clear: not in the database (only AES-GCM ciphertext), not in any
 * log line (at debug level), not in any response; nor does the key-encryption key.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { KeyEncryptionKey } from '../../src/signing/key-encryption.js';
import { keyAssociatedData } from '../../src/signing/key-service.js';
import { createRepository, fetchServerKey, postUpdate } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { signFile, targetFile, targetsDoc } from '../support/tuf-kit.js';

const skip = process.env['TEST_DATABASE_URL'] ? false : 'needs TEST_DATABASE_URL (the server runs as its own process)';
let db: TestDatabase;
let server: ServerProcess;
const kek = randomBytes(32);
const responses: string[] = [];

before(async () => {
  if (skip) return;
  db = await createTestDatabase();
  server = await spawnServer({ DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir, SIGNET_KEY_ENCRYPTION_KEY: kek.toString('hex'), SIGNET_LOG_LEVEL: 'debug' });
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

/** Every spelling a leaked private key could take. */
function spellings(secret: Buffer): string[] {
  return [secret.toString('hex'), secret.toString('hex').toUpperCase(), secret.toString('base64'), secret.toString('base64url')];
}

test('no private key or key-encryption key in clear in the database, logs or responses', { skip }, async () => {
  // Exercise every code path that touches server keys: creation, reuse, rotation, signing, errors.
  for (const gun of ['registry.example.com/secrets/a', 'registry.example.com/secrets/b']) {
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    responses.push((await request(server.url).get(`/v2/${gun}/_trust/tuf/timestamp.key`)).text);
    responses.push((await request(server.url).post(`/v2/${gun}/_trust/tuf/timestamp.key`)).text);
    responses.push((await request(server.url).post(`/v2/${gun}/_trust/tuf/snapshot.key`)).text);
    await fetchServerKey(server.url, gun, 'snapshot');
    const targets = signFile(targetsDoc({ version: 2, targets: { a: targetFile('a') } }), [repo.targetsKey]);
    responses.push((await postUpdate(server.url, gun, { targets })).text);
    responses.push((await postUpdate(server.url, gun, { targets })).text); // refused: VERSION
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
      responses.push((await request(server.url).get(`/v2/${gun}/_trust/tuf/${role}.json`)).text);
    }
  }
  responses.push((await request(server.url).get('/v2/_trust/changefeed?records=100')).text);

  const client = new pg.Client({ connectionString: db.url! });
  await client.connect();
  try {
    const keys = await client.query<{ key_id: string; gun: string; role: string; private_key: Buffer }>(
      'select key_id, gun, role, private_key from server_keys',
    );
    assert.ok(keys.rows.length >= 6, `expected several server keys, found ${keys.rows.length}`);
    const wrapper = new KeyEncryptionKey(kek);
    const secrets: Buffer[] = [kek];
    for (const row of keys.rows) {
      const der = wrapper.decrypt(row.private_key, keyAssociatedData({ keyId: row.key_id.trim(), gun: row.gun, role: row.role }));
      const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
      const scalar = Buffer.from(jwk.d!, 'base64url');
      assert.ok(scalar.length === 32, 'private scalar is 32 bytes');
      secrets.push(der, scalar);
    }
    // Everything the database holds, every table, every column.
    const tables = (await client.query<{ tablename: string }>("select tablename from pg_tables where schemaname = 'public'")).rows.map((r) => r.tablename);
    const dump: Buffer[] = [];
    for (const table of tables) {
      for (const row of (await client.query(`select * from ${table}`)).rows as Record<string, unknown>[]) {
        for (const value of Object.values(row)) dump.push(Buffer.isBuffer(value) ? value : Buffer.from(String(value)));
      }
    }
    const database = Buffer.concat(dump);
    const logs = server.output();
    assert.ok(logs.includes('"level":"debug"') || logs.includes('"level":"info"'), 'the server logged');
    const text = [logs, ...responses].join('\n');
    for (const secret of secrets) {
      assert.equal(database.includes(secret), false, 'a private key or the KEK is stored in clear');
      for (const spelling of spellings(secret)) {
        assert.equal(database.includes(Buffer.from(spelling)), false, 'a private key or the KEK is stored encoded');
        assert.equal(text.includes(spelling), false, 'a private key or the KEK appears in a log line or response');
      }
    }
  } finally {
    await client.end();
  }
});
