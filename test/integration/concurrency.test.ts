/**
 * Two Signet processes on one Postgres database, hit at once with conflicting updates of one
 * repository and with updates of different repositories: none is lost, no version is stored
 * twice, every refusal is a clean 400 VERSION, and the stored chains stay consistent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import pg from 'pg';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { sha256Hex, signFile, targetFile, targetsDoc } from '../support/tuf-kit.js';

// Two processes can share only a real Postgres server; the embedded store is single-process.
const skip = process.env['TEST_DATABASE_URL'] ? false : 'needs TEST_DATABASE_URL (real Postgres)';

describe('two server processes, one database', { skip, timeout: 180_000 }, () => {
  let db: TestDatabase;
  let servers: ServerProcess[] = [];
  let sqlClient: pg.Client;

  before(async () => {
    db = await createTestDatabase();
    const env = { DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir, SIGNET_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), SIGNET_LOG_LEVEL: 'warn' };
    // Start one first so that migrations run once; the second then finds the schema in place.
    servers = [await spawnServer(env)];
    servers.push(await spawnServer(env));
    sqlClient = new pg.Client({ connectionString: db.url! });
    await sqlClient.connect();
  });

  after(async () => {
    await sqlClient?.end();
    for (const s of servers) await s.stop();
    await db?.drop();
  });

  async function versions(gun: string, role: string): Promise<number[]> {
    const r = await sqlClient.query<{ version: number }>('select version from tuf_files where gun = $1 and role = $2 order by version', [gun, role]);
    return r.rows.map((row) => row.version);
  }

  test('conflicting targets updates of one repository serialise: no loss, no duplicates', async () => {
    const gun = 'registry.example.com/race/one';
    const repo: TestRepository = await createRepository(servers[0]!.url, gun, { serverSnapshot: true });
    // Versions 2..101, each sent twice (once to each process), all at once.
    const attempts = [];
    for (let v = 2; v <= 101; v++) {
      for (const server of servers) {
        const targets = signFile(targetsDoc({ version: v, targets: { [`tag-${v}`]: targetFile(`payload ${v} ${server.url}`) } }), [repo.targetsKey]);
        attempts.push(postUpdate(server.url, gun, { targets }).then((res) => ({ v, res, targets })));
      }
    }
    const results = await Promise.all(attempts);
    const accepted = results.filter((r) => r.res.status === 200);
    const refused = results.filter((r) => r.res.status !== 200);
    for (const r of refused) {
      assert.equal(r.res.status, 400, r.res.text);
      assert.equal(r.res.body.errors?.[0]?.code, 'VERSION', r.res.text);
    }
    assert.ok(accepted.length >= 1);
    console.log(
      `# concurrency: ${results.length} conflicting updates to one repository on 2 processes: ${accepted.length} accepted, ${refused.length} refused with VERSION, 0 other`,
    );
    assert.ok(accepted.length <= 100, 'at most one update per version can win');

    // Exactly one stored row per accepted update, and every accepted body is stored verbatim.
    const stored = await versions(gun, 'targets');
    assert.equal(stored.length, accepted.length + 1);
    assert.equal(new Set(stored).size, stored.length);
    for (const a of accepted) {
      const res = await request(servers[1]!.url).get(`/v2/${gun}/_trust/tuf/targets.${sha256Hex(a.targets)}.json`);
      assert.equal(res.status, 200);
    }
    // Each accepted update produced exactly one snapshot and one timestamp, numbered without gaps.
    const expected = Array.from({ length: accepted.length + 1 }, (_, i) => i + 1);
    assert.deepEqual(await versions(gun, 'snapshot'), expected);
    assert.deepEqual(await versions(gun, 'timestamp'), expected);
    const feed = await sqlClient.query('select count(*)::int as n from changefeed where gun = $1', [gun]);
    assert.equal(feed.rows[0].n, accepted.length + 1);

    // The current chain ends at the highest accepted targets version.
    const current = await request(servers[0]!.url).get(`/v2/${gun}/_trust/tuf/targets.json`);
    const highest = accepted.reduce((a, b) => (b.v > a.v ? b : a));
    assert.ok(Buffer.from(current.text).equals(highest.targets));
  });

  test('updates of different repositories proceed in parallel on both processes', async () => {
    const guns = Array.from({ length: 20 }, (_, i) => `registry.example.com/race/many-${i}`);
    const repos = await Promise.all(guns.map((gun, i) => createRepository(servers[i % 2]!.url, gun, { serverSnapshot: true })));
    const posts = repos.flatMap((repo, i) =>
      [2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((v) => {
        const targets = signFile(targetsDoc({ version: v, targets: { t: targetFile(`${repo.gun} ${v}`) } }), [repo.targetsKey]);
        return postUpdate(servers[(i + v) % 2]!.url, repo.gun, { targets }).then((res) => ({ gun: repo.gun, v, res }));
      }),
    );
    const results = await Promise.all(posts);
    for (const r of results) assert.ok(r.res.status === 200 || r.res.body.errors?.[0]?.code === 'VERSION', r.res.text);
    const ok = results.filter((r) => r.res.status === 200).length;
    console.log(
      `# concurrency: ${results.length} updates to ${guns.length} repositories on 2 processes at once: ${ok} accepted, ${results.length - ok} refused with VERSION`,
    );
    for (const gun of guns) {
      const ok = results.filter((r) => r.gun === gun && r.res.status === 200).length;
      assert.equal((await versions(gun, 'targets')).length, ok + 1);
      assert.deepEqual(
        await versions(gun, 'timestamp'),
        Array.from({ length: ok + 1 }, (_, i) => i + 1),
      );
    }
  });

  test('a process serves what another process published: its cache follows change notifications', async () => {
    const gun = 'registry.example.com/race/cache';
    const repo = await createRepository(servers[0]!.url, gun, { serverSnapshot: true });
    const [a, b] = [servers[0]!.url, servers[1]!.url];
    const get = async (url: string, role: string) => (await request(url).get(`/v2/${gun}/_trust/tuf/${role}.json`)).text;
    // Warm process B's cache.
    for (let i = 0; i < 3; i++) assert.ok(Buffer.from(await get(b, 'targets')).equals(repo.targets));
    const before = await get(b, 'timestamp');
    for (let v = 2; v <= 4; v++) {
      const targets = signFile(targetsDoc({ version: v, targets: { t: targetFile(`cache ${v}`) } }), [repo.targetsKey]);
      assert.equal((await postUpdate(a, gun, { targets })).status, 200);
      // Notifications arrive within milliseconds; allow a generous bound.
      let seen = '';
      for (let i = 0; i < 50 && !Buffer.from(seen).equals(targets); i++) {
        seen = await get(b, 'targets');
        if (!Buffer.from(seen).equals(targets)) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(Buffer.from(seen).equals(targets), `process B still serves an old targets after v${v}`);
    }
    assert.notEqual(await get(b, 'timestamp'), before);
    // A deletion through B is seen by A at once (A must not serve cached metadata of a deleted repository).
    await get(a, 'root');
    assert.equal((await request(b).delete(`/v2/${gun}/_trust/tuf/`)).status, 200);
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      status = (await request(a).get(`/v2/${gun}/_trust/tuf/root.json`)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 404);
  });

  test('concurrent first requests for a timestamp key from both processes agree on one key', async () => {
    const gun = 'registry.example.com/race/keys';
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => request(servers[i % 2]!.url).get(`/v2/${gun}/_trust/tuf/timestamp.key`)));
    for (const a of answers) assert.equal(a.status, 200);
    assert.equal(new Set(answers.map((a) => a.text)).size, 1);
    const keys = await sqlClient.query('select count(*)::int as n from server_keys where gun = $1', [gun]);
    assert.equal(keys.rows[0].n, 1);
  });
});
