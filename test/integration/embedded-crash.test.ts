/**
 * The embedded store (PGlite) under `kill -9`: a Signet process killed in the middle of an update
 * storm loses no update it acknowledged, `signet check` finds the store sound, and the next
 * process serves everything and publishes on. Twice, so that the second kill lands on a store that
 * has already been recovered once. Runs whatever TEST_DATABASE_URL says: it is about the embedded
 * store only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import request from 'supertest';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { projectRoot } from '../support/paths.js';
import { spawnServer, type ServerProcess } from '../support/server.js';
import { sha256Hex, signFile, targetFile, targetsDoc } from '../support/tuf-kit.js';

const main = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');

describe('embedded store: kill -9 during an update storm', { timeout: 120_000 }, () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'signet-embedded-crash-'));
  // No DATABASE_URL: the embedded store in dataDir. No background scans writing on their own.
  const env = { DATABASE_URL: '', SIGNET_DATA_DIR: dataDir, SIGNET_LOG_LEVEL: 'warn', SIGNET_EXPIRY_SCAN_INTERVAL: '0' };
  const servers: ServerProcess[] = [];

  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  const check = () => {
    const r = spawnSync(process.execPath, [main, 'check', '--json'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `signet check exited ${r.status}: ${r.stdout.slice(0, 2000)} ${r.stderr.slice(0, 2000)}`);
    return JSON.parse(r.stdout) as { errors: number; rows: number; repositories: number; problems: unknown[] };
  };

  test('no acknowledged update is lost; the store checks sound; publishing resumes', async () => {
    const t0 = performance.now();
    const acknowledged: { gun: string; bytes: Buffer }[] = [];
    const next = new Map<string, number>();
    const repos: TestRepository[] = [];

    /**
     * Every repository publishes version after version until the kill. The kill waits for a
     * number of acknowledgements rather than a time, so that a slow, busy machine kills as
     * deep into the storm as a quiet one, with updates in flight.
     */
    const storm = async (server: ServerProcess, acks: number) => {
      // An update cut by the last kill may have committed unacknowledged: go on from what is stored.
      for (const repo of repos) next.set(repo.gun, (await currentVersion(server, repo)) + 1);
      let stop = false;
      const startedWith = acknowledged.length;
      const inFlight = new Set<string>();
      const runs = repos.map(async (repo) => {
        while (!stop) {
          const v = next.get(repo.gun)!;
          const targets = signFile(targetsDoc({ version: v, targets: { [`t${v}`]: targetFile(`${repo.gun} ${v}`) } }), [repo.targetsKey]);
          inFlight.add(repo.gun);
          try {
            const res = await postUpdate(server.url, repo.gun, { targets });
            if (res.status === 200) {
              acknowledged.push({ gun: repo.gun, bytes: targets });
              next.set(repo.gun, v + 1);
            } else if (!stop) assert.fail(`update ${v} of ${repo.gun}: ${res.status} ${res.text}`);
          } catch (e) {
            if (stop) return; // the connection was cut by the kill
            throw e;
          } finally {
            inFlight.delete(repo.gun);
          }
        }
      });
      const deadline = Date.now() + 40_000;
      while (acknowledged.length - startedWith < acks && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      stop = true;
      const cutting = inFlight.size;
      await server.stop('SIGKILL');
      await Promise.all(runs);
      assert.ok(acknowledged.length - startedWith >= acks, `only ${acknowledged.length - startedWith} updates were acknowledged in 40 s`);
      return cutting;
    };

    const currentVersion = async (server: ServerProcess, repo: TestRepository) => {
      const res = await request(server.url).get(`/v2/${repo.gun}/_trust/tuf/targets.json`);
      assert.equal(res.status, 200);
      return (JSON.parse(res.text) as { signed: { version: number } }).signed.version;
    };

    const verify = async (server: ServerProcess) => {
      for (const a of acknowledged) {
        const res = await request(server.url).get(`/v2/${a.gun}/_trust/tuf/targets.${sha256Hex(a.bytes)}.json`);
        assert.equal(res.status, 200, `an acknowledged update of ${a.gun} was lost`);
      }
    };

    // First start: initdb, then four repositories with server-held snapshot keys.
    const first = await spawnServer(env);
    servers.push(first);
    for (let i = 0; i < 4; i++) repos.push(await createRepository(first.url, `registry.example.com/embedded-crash/r${i}`, { serverSnapshot: true }));
    const cut1 = await storm(first, 40);

    let report = check();
    assert.equal(report.errors, 0, JSON.stringify(report.problems.slice(0, 5)));
    assert.equal(report.repositories, 4);

    // The recovered store takes a second storm and a second kill.
    const second = await spawnServer(env);
    servers.push(second);
    await verify(second);
    const cut2 = await storm(second, 40);

    report = check();
    assert.equal(report.errors, 0, JSON.stringify(report.problems.slice(0, 5)));

    const third = await spawnServer(env);
    servers.push(third);
    await verify(third);
    // Publishing continues from the version the store holds.
    const repo = repos[0]!;
    const current = await currentVersion(third, repo);
    // The last acknowledged version, or the one after it if the kill cut its acknowledgement.
    assert.ok(current === next.get(repo.gun)! - 1 || current === next.get(repo.gun), `current targets version ${current}`);
    const bytes = signFile(targetsDoc({ version: current + 1 }), [repo.targetsKey]);
    assert.equal((await postUpdate(third.url, repo.gun, { targets: bytes })).status, 200);
    await third.stop('SIGTERM');
    console.log(
      `# embedded crash: ${acknowledged.length} updates acknowledged over two SIGKILLs (${cut1} and ${cut2} in flight when they landed); signet check read ${report.rows} files: ${report.errors} errors; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  });
});
