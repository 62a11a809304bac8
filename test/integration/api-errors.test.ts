/**
 * API errors say what is wrong with the request that was sent: the parameter that is missing or
 * malformed, the one of two that contradict each other, the name that cannot be a repository.
 * Each case also checks that nothing was stored.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createRepository, postUpdate } from '../support/client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { ecdsaKey, multipartBody, signFile, targetsDoc } from '../support/tuf-kit.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
  await createRepository(server.url, 'registry.example.com/errors/app', { serverSnapshot: true });
});
after(async () => {
  await server?.close();
});

type Envelope = { errors: { code: string; detail?: unknown }[] };
const first = (body: unknown) => (body as Envelope).errors[0]!;

async function rows(): Promise<number> {
  const db = server.context.database.db;
  const count = async (table: 'tuf_files' | 'changefeed' | 'server_keys') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return (await count('tuf_files')) + (await count('changefeed')) + (await count('server_keys'));
}

describe('changefeed parameters', () => {
  for (const path of ['/v2/_trust/changefeed', '/v2/registry.example.com/errors/app/_trust/changefeed']) {
    test(`${path} without records says records is required`, async () => {
      const res = await request(server.url).get(path);
      assert.equal(res.status, 400);
      assert.equal(first(res.body).code, 'INVALID_PARAMETERS');
      assert.match(String(first(res.body).detail), /^records is required/);
    });

    test(`${path}?change_id=zz blames change_id, and the missing records too`, async () => {
      const res = await request(server.url).get(path).query({ change_id: 'zz' });
      assert.equal(res.status, 400);
      const detail = String(first(res.body).detail);
      assert.match(detail, /invalid change_id parameter: "zz"/);
      assert.match(detail, /records is required/);
      assert.doesNotMatch(detail, /invalid records parameter: ""/);
    });

    test(`${path}?change_id=zz&records=10 blames only change_id`, async () => {
      const res = await request(server.url).get(path).query({ change_id: 'zz', records: '10' });
      assert.equal(res.status, 400);
      assert.match(String(first(res.body).detail), /^invalid change_id parameter: "zz" \(expected an integer/);
    });

    test(`${path}?records=ten blames records`, async () => {
      const res = await request(server.url).get(path).query({ records: 'ten' });
      assert.equal(res.status, 400);
      assert.match(String(first(res.body).detail), /^invalid records parameter: "ten"/);
    });
  }
});

describe('history parameters', () => {
  const G = 'registry.example.com/errors/app';
  const history = (query: Record<string, string>) => request(server.url).get(`/_signet/history/${G}`).query(query);

  test('both at and timestamp_version: refused, not answered with one of them', async () => {
    const res = await history({ at: new Date().toISOString(), timestamp_version: '1' });
    assert.equal(res.status, 400);
    assert.equal(first(res.body).code, 'INVALID_PARAMETERS');
    assert.equal(first(res.body).detail, 'give either at or timestamp_version, not both');
  });

  test('timestamp_version=0 is blamed on timestamp_version, not on at', async () => {
    for (const v of ['0', '-1', 'two', '1.5', '0x1', '99999999999']) {
      const res = await history({ timestamp_version: v });
      assert.equal(res.status, 400, v);
      const detail = String(first(res.body).detail);
      assert.match(detail, /^timestamp_version must be/, v);
      assert.doesNotMatch(detail, /\bat\b must/, v);
    }
  });

  test('a bad at is blamed on at', async () => {
    const res = await history({ at: 'last tuesday' });
    assert.equal(res.status, 400);
    assert.match(String(first(res.body).detail), /^at must be an RFC 3339 time/);
  });

  test('each alone still works', async () => {
    assert.equal((await history({ timestamp_version: '1' })).status, 200);
    assert.equal((await history({ at: new Date().toISOString() })).status, 200);
  });
});

/** A request with the path exactly as given: supertest would re-encode it. */
function rawRequest(method: string, path: string, body?: { type: string; data: Buffer }): Promise<{ status: number; text: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers: body ? { 'Content-Type': body.type, 'Content-Length': body.data.length } : {} },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body?.data);
  });
}

describe('names that cannot be repositories', () => {
  const update = () => {
    const { body, contentType } = multipartBody({ targets: signFile(targetsDoc({}), [ecdsaKey()]) });
    return { type: contentType, data: body };
  };

  for (const path of ['/v2/a*b/_trust/tuf/', '/v2/registry.example.com/a*b/_trust/tuf/', '/v2/%ff%fe/x/_trust/tuf/', '/v2/x/%c0%af/_trust/tuf/']) {
    test(`POST ${path} is 400 INVALID_GUN with the reason, and nothing is stored`, async () => {
      const before = await rows();
      const res = await rawRequest('POST', path, update());
      assert.equal(res.status, 400, res.text);
      const error = first(JSON.parse(res.text));
      assert.equal(error.code, 'INVALID_GUN');
      assert.match(String(error.detail), /"\*"|percent-encoded UTF-8/);
      assert.equal(await rows(), before);
    });

    test(`DELETE ${path} is 400 INVALID_GUN`, async () => {
      const res = await rawRequest('DELETE', path);
      assert.equal(res.status, 400, res.text);
      assert.equal(first(JSON.parse(res.text)).code, 'INVALID_GUN');
    });
  }

  test('reads of such names still find nothing (404), as notary answers', async () => {
    for (const path of ['/v2/a*b/_trust/tuf/root.json', '/v2/%ff%fe/x/_trust/tuf/root.json']) {
      const res = await rawRequest('GET', path);
      assert.equal(res.status, 404, path);
      assert.equal(first(JSON.parse(res.text)).code, 'METADATA_NOT_FOUND');
    }
  });

  test('a valid name is still published', async () => {
    const res = await postUpdate(server.url, 'registry.example.com/errors/app', {
      targets: signFile(targetsDoc({ version: 9 }), [ecdsaKey()]),
    });
    // Signed by a key the root does not list: refused for that reason, not for the name.
    assert.equal(res.status, 400);
    assert.notEqual(res.body.errors?.[0]?.code, 'INVALID_GUN');
  });
});
