/** A repository created, read back and updated over HTTP, on a fresh database. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { createRepository, postUpdate } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { sha256Hex, signFile, targetFile, targetsDoc } from '../support/tuf-kit.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.close();
});

test('create, read by name, checksum and version, update with a server-held snapshot key', async () => {
  const gun = 'registry.example.com/smoke/app';
  const repo = await createRepository(server.url, gun, { serverSnapshot: true });
  const root = await request(server.url).get(`/v2/${gun}/_trust/tuf/root.json`);
  assert.equal(root.status, 200);
  assert.ok(Buffer.from(root.text).equals(repo.root));
  assert.match(root.headers['cache-control']!, /must-revalidate/);

  const byHash = await request(server.url).get(`/v2/${gun}/_trust/tuf/targets.${sha256Hex(repo.targets)}.json`);
  assert.equal(byHash.status, 200);
  assert.ok(Buffer.from(byHash.text).equals(repo.targets));
  const byVersion = await request(server.url).get(`/v2/${gun}/_trust/tuf/1.root.json`);
  assert.equal(byVersion.status, 200);

  const targets2 = signFile(targetsDoc({ version: 2, targets: { v1: targetFile('payload') } }), [repo.targetsKey]);
  const res = await postUpdate(server.url, gun, { targets: targets2 });
  assert.equal(res.status, 200, res.text);
  const current = await request(server.url).get(`/v2/${gun}/_trust/tuf/targets.json`);
  assert.ok(Buffer.from(current.text).equals(targets2));
  const ts = JSON.parse((await request(server.url).get(`/v2/${gun}/_trust/tuf/timestamp.json`)).text) as { signed: { version: number } };
  assert.equal(ts.signed.version, 2);
});
