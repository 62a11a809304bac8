/**
 * Faults: a Signet process killed with SIGKILL in the middle of an update storm loses nothing
 * it acknowledged and leaves a store `signet check` finds sound; a database outage turns
 * requests into fast 503s and an unhealthy health check, and Signet recovers by itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { projectRoot } from '../support/paths.js';
import { createPostgresCluster, postgresAvailable, type PostgresCluster } from '../support/postgres.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { sha256Hex, signFile, targetFile, targetsDoc } from '../support/tuf-kit.js';

const main = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');

function signetCheck(env: Record<string, string>): {
  code: number | null;
  report: { errors: number; rows: number; repositories: number; problems: unknown[] };
} {
  const r = spawnSync(process.execPath, [main, 'check', '--json'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: r.status, report: JSON.parse(r.stdout) };
}

describe('crash in the middle of an update storm', { skip: process.env['TEST_DATABASE_URL'] ? false : 'needs TEST_DATABASE_URL', timeout: 180_000 }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  const servers: ServerProcess[] = [];

  before(async () => {
    db = await createTestDatabase();
    env = { DATABASE_URL: db.url!, SIGNET_DATA_DIR: db.dataDir, SIGNET_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), SIGNET_LOG_LEVEL: 'warn' };
  });
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    await db?.drop();
  });

  test('kill -9 during updates: every acknowledged update is stored, the store checks sound, service resumes', async () => {
    const first = await spawnServer(env);
    servers.push(first);
    const repos: TestRepository[] = [];
    for (let i = 0; i < 4; i++) repos.push(await createRepository(first.url, `registry.example.com/crash/r${i}`, { serverSnapshot: true }));
    const acknowledged: { gun: string; bytes: Buffer }[] = [];
    let killed = false;
    // Each repository gets a stream of versions; the kill lands while many are in flight.
    const storms = repos.map(async (repo) => {
      for (let v = 2; v <= 200 && !killed; v++) {
        const targets = signFile(targetsDoc({ version: v, targets: { [`t${v}`]: targetFile(`${repo.gun} ${v}`) } }), [repo.targetsKey]);
        try {
          const res = await postUpdate(first.url, repo.gun, { targets });
          if (res.status === 200) acknowledged.push({ gun: repo.gun, bytes: targets });
        } catch {
          return; // connection cut by the kill
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    killed = true;
    await first.stop('SIGKILL');
    await Promise.all(storms);
    assert.ok(acknowledged.length > 10, `only ${acknowledged.length} updates were acknowledged before the kill`);

    const check = signetCheck(env);
    assert.equal(check.code, 0, JSON.stringify(check.report.problems.slice(0, 5)));
    assert.equal(check.report.errors, 0);
    assert.equal(check.report.repositories, 4);
    console.log(
      `# crash: ${acknowledged.length} updates acknowledged before SIGKILL; signet check read ${check.report.rows} files in ${check.report.repositories} repositories: ${check.report.errors} errors`,
    );

    const second = await spawnServer(env);
    servers.push(second);
    for (const a of acknowledged) {
      const res = await request(second.url).get(`/v2/${a.gun}/_trust/tuf/targets.${sha256Hex(a.bytes)}.json`);
      assert.equal(res.status, 200, `an acknowledged update of ${a.gun} was lost`);
    }
    // And publishing continues from where the store is.
    const repo = repos[0]!;
    const current = JSON.parse((await request(second.url).get(`/v2/${repo.gun}/_trust/tuf/targets.json`)).text) as { signed: { version: number } };
    const next = signFile(targetsDoc({ version: current.signed.version + 1 }), [repo.targetsKey]);
    assert.equal((await postUpdate(second.url, repo.gun, { targets: next })).status, 200);
  });
});

describe('database outage', { skip: postgresAvailable() ? false : 'Postgres server binaries not installed', timeout: 180_000 }, () => {
  let cluster: PostgresCluster;
  let server: ServerProcess;

  before(async () => {
    cluster = await createPostgresCluster();
  });
  after(async () => {
    await server?.stop('SIGKILL');
    cluster?.destroy();
  });

  test('requests fail fast with 503 while the database is down, and Signet recovers by itself', async () => {
    server = await spawnServer({
      DATABASE_URL: cluster.url,
      SIGNET_DATA_DIR: `/tmp/signet-outage-${randomBytes(4).toString('hex')}`,
      SIGNET_LOG_LEVEL: 'error',
    });
    const gun = 'registry.example.com/outage/app';
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    assert.equal((await request(server.url).get(`/v2/${gun}/_trust/tuf/root.json`)).status, 200);

    cluster.stop();
    const started = Date.now();
    const health = await request(server.url).get('/_notary_server/health');
    assert.equal(health.status, 503);
    assert.match(health.text, /DB operational/);
    const targets = signFile(targetsDoc({ version: 2 }), [repo.targetsKey]);
    const post = await postUpdate(server.url, gun, { targets });
    assert.equal(post.status, 503, post.text);
    assert.equal(post.body.errors?.[0]?.code, 'UNAVAILABLE');
    // Reads are answered from memory only while the server can hear about changes: here it cannot.
    const read = await request(server.url).get(`/v2/${gun}/_trust/tuf/timestamp.json`);
    assert.equal(read.status, 503, read.text);
    assert.ok(Date.now() - started < 15_000, `outage responses took ${Date.now() - started} ms`);
    console.log(`# outage: health, update and read answered 503 within ${Date.now() - started} ms in total`);

    cluster.start();
    const recoveredAt = Date.now();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await request(server.url).get('/_notary_server/health')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, 'health did not recover');
    assert.equal((await postUpdate(server.url, gun, { targets })).status, 200);
    assert.equal((await request(server.url).get(`/v2/${gun}/_trust/tuf/targets.json`)).text, targets.toString());
    console.log(`# recovered ${Date.now() - recoveredAt} ms after the database came back`);
  });
});
