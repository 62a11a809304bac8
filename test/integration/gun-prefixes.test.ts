/** SIGNET_GUN_PREFIXES: only repositories under the configured prefixes are served (notary's gun_prefixes). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { createRepository, postUpdate } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { signFile, targetsDoc, ecdsaKey } from '../support/tuf-kit.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ SIGNET_GUN_PREFIXES: 'registry.example.com/, docker.io/team/' });
});
after(async () => {
  await server?.close();
});

test('repositories under a prefix work as usual', async () => {
  await createRepository(server.url, 'registry.example.com/app', { serverSnapshot: true });
  await createRepository(server.url, 'docker.io/team/tool', { serverSnapshot: true });
  assert.equal((await request(server.url).get('/v2/docker.io/team/tool/_trust/tuf/root.json')).status, 200);
});

test('an update outside the prefixes is 400 INVALID_GUN naming the prefixes; nothing is stored', async () => {
  const before = await server.context.database.db
    .selectFrom('tuf_files')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  const res = await postUpdate(server.url, 'other.example.com/app', { targets: signFile(targetsDoc({}), [ecdsaKey()]) });
  assert.equal(res.status, 400);
  assert.equal(res.body.errors?.[0]?.code, 'INVALID_GUN');
  assert.equal(res.body.errors?.[0]?.detail, 'Require GUNs with prefix: [registry.example.com/ docker.io/team/]');
  const after = await server.context.database.db
    .selectFrom('tuf_files')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  assert.equal(after.n, before.n);
});

test('every other route outside the prefixes is 404, and no server key is created', async () => {
  for (const path of ['_trust/tuf/root.json', '_trust/tuf/timestamp.key', '_trust/changefeed?records=1']) {
    const res = await request(server.url).get(`/v2/docker.io/other/app/${path}`);
    assert.equal(res.status, 404, path);
    assert.equal(res.body.errors?.[0]?.code, 'METADATA_NOT_FOUND');
  }
  assert.equal((await request(server.url).delete('/v2/docker.io/other/app/_trust/tuf/')).status, 404);
  const keys = await server.context.database.db.selectFrom('server_keys').select('gun').where('gun', '=', 'docker.io/other/app').execute();
  assert.equal(keys.length, 0);
});

test('a prefix that does not end with "/" is a configuration error', async () => {
  await assert.rejects(startTestServer({ SIGNET_GUN_PREFIXES: 'registry.example.com' }), /SIGNET_GUN_PREFIXES/);
});
