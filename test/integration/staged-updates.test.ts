/**
 * Key ceremonies over the HTTP API, against a real Signet (PGlite or Postgres): updates staged
 * before their thresholds are met, signatures added round by round, published through the
 * normal update path once every threshold is met; never served before; every refusal a clear
 * 4xx in the error envelope with nothing changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { expireStagedUpdates } from '../../src/service/staged-updates.js';
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { createRepository, postUpdate, type TestRepository } from '../support/client.js';
import { assertRefused, storeSnapshot } from '../support/hostile.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { certKey, ecdsaKey, rootDoc, signatureFor, signFile, targetsDoc, targetFile, type TestKey } from '../support/tuf-kit.js';

interface Threshold {
  name: string;
  threshold: number;
  keyIds: string[];
  signedBy: string[];
  pendingKeyIds: string[];
  needed: number;
}
interface Staged {
  id: string;
  gun: string;
  role: string;
  version: number;
  state: string;
  stagedBy: string;
  expiresAt: string;
  createdAt: string;
  signedSha256: string;
  thresholds: Threshold[] | null;
  pendingKeyIds: string[];
  outdated: string | null;
  signed?: Record<string, unknown>;
}

describe('staged updates (key ceremonies) over the API', { timeout: 120_000 }, () => {
  let server: TestServer;
  const api = () => request(server.url);
  const db = () => server.context.database.db;

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  const stage = (gun: string, role: string, signed: object, signers: TestKey[] = [], extra: object = {}) =>
    api()
      .post(`/api/v1/repositories/${gun}/staged`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ role, file: { signed, signatures: signers.map((k) => signatureFor(k, canonicalJson(signed))) }, ...extra }));
  const sign = (gun: string, id: string, signatures: object[]) =>
    api().post(`/api/v1/repositories/${gun}/staged/${id}/signatures`).set('Content-Type', 'application/json').send(JSON.stringify({ signatures }));
  const signWith = (gun: string, id: string, signed: object, key: TestKey) => sign(gun, id, [signatureFor(key, canonicalJson(signed))]);
  const servedRootVersion = async (gun: string) =>
    (JSON.parse((await api().get(`/v2/${gun}/_trust/tuf/root.json`)).text) as { signed: { version: number } }).signed.version;
  const byName = (s: Staged, name: string) => s.thresholds!.find((t) => t.name === name)!;

  /** A rotation from `repo`'s root to `keys` with `threshold`, the other roles unchanged. */
  function rotatedRoot(repo: TestRepository, keys: TestKey[], threshold: number, version = 2) {
    return rootDoc({ ...repo.rootSpec, version, root: keys, rootThreshold: threshold });
  }

  test('a 2-of-3 root rotation: the old root threshold and the new one counted apart, published once both are met', async () => {
    const gun = 'example.com/ceremony/two-of-three';
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    const holders = [1, 2, 3].map(() => certKey({ commonName: gun }));
    const signed = rotatedRoot(repo, holders, 2);

    const res = await stage(gun, 'root', signed);
    assert.equal(res.status, 201, res.text);
    const staged = res.body as Staged;
    assert.equal(staged.state, 'pending');
    assert.equal(staged.stagedBy, 'anonymous');
    assert.equal(staged.role, 'root');
    assert.equal(staged.version, 2);
    const days = (Date.parse(staged.expiresAt) - Date.parse(staged.createdAt)) / 86_400_000;
    assert.ok(Math.abs(days - 7) < 0.01, `expires after 7 days by default, got ${days}`);
    assert.deepEqual(
      staged.thresholds!.map((t) => [t.name, t.threshold, t.needed]),
      [
        ['current-root', 1, 1],
        ['root', 2, 2],
      ],
    );
    assert.deepEqual(byName(staged, 'current-root').pendingKeyIds, [repo.rootKey.keyId]);
    assert.deepEqual(byName(staged, 'root').pendingKeyIds, holders.map((k) => k.keyId).sort());
    assert.deepEqual(staged.pendingKeyIds, [repo.rootKey.keyId, ...holders.map((k) => k.keyId)].sort());

    // Round 1: the old root's holder. Not served yet.
    let r = await signWith(gun, staged.id, signed, repo.rootKey);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.published, null);
    assert.equal(byName(r.body.staged as Staged, 'current-root').needed, 0);
    assert.equal(await servedRootVersion(gun), 1);
    // Round 2: one new holder.
    r = await signWith(gun, staged.id, signed, holders[0]!);
    assert.equal(r.status, 200, r.text);
    assert.equal(byName(r.body.staged as Staged, 'root').needed, 1);
    assert.equal(await servedRootVersion(gun), 1);
    const listed = (await api().get(`/api/v1/repositories/${gun}/staged`)).body as { count: number; staged: Staged[] };
    assert.deepEqual(
      listed.staged.map((s) => s.id),
      [staged.id],
    );
    // Round 3: the second new holder meets the last threshold: published.
    r = await signWith(gun, staged.id, signed, holders[2]!);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      (r.body.published as { role: string }[]).map((f) => f.role),
      ['root', 'snapshot', 'timestamp'],
    );
    assert.equal((r.body.staged as Staged).state, 'published');
    assert.equal(await servedRootVersion(gun), 2);
    const served = JSON.parse((await api().get(`/v2/${gun}/_trust/tuf/root.json`)).text) as { signed: unknown; signatures: { keyid: string }[] };
    assert.deepEqual(served.signed, JSON.parse(canonicalJson(signed).toString()));
    assert.deepEqual(served.signatures.map((s) => s.keyid).sort(), [repo.rootKey.keyId, holders[0]!.keyId, holders[2]!.keyId].sort());
    const got = (await api().get(`/api/v1/repositories/${gun}/staged/${staged.id}`)).body as Staged;
    assert.equal(got.state, 'published');
    assert.equal((await api().get(`/api/v1/repositories/${gun}/staged`)).body.count, 0);

    const audit = (await api().get(`/_signet/audit?gun=${encodeURIComponent(gun)}`)).body as { records: { action: string }[] };
    const actions = audit.records.map((a) => a.action).reverse();
    assert.deepEqual(
      actions.filter((a) => a.startsWith('staged') || a === 'update'),
      ['update', 'staged-create', 'staged-sign', 'staged-sign', 'staged-sign', 'update', 'staged-publish'],
    );
  });

  test('3-of-5: a holder signing twice is counted once', async () => {
    const gun = 'example.com/ceremony/three-of-five';
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    const holders = [1, 2, 3, 4, 5].map(() => certKey({ commonName: gun }));
    const signed = rotatedRoot(repo, holders, 3);
    const staged = (await stage(gun, 'root', signed, [repo.rootKey, holders[0]!])).body as Staged;
    assert.equal(byName(staged, 'root').needed, 2);
    const again = await signWith(gun, staged.id, signed, holders[0]!);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body.alreadySigned, [holders[0]!.keyId]);
    assert.equal(byName(again.body.staged as Staged, 'root').needed, 2);
    assert.equal((await signWith(gun, staged.id, signed, holders[1]!)).body.published, null);
    assert.equal(await servedRootVersion(gun), 1);
    const last = await signWith(gun, staged.id, signed, holders[4]!);
    assert.ok(last.body.published, last.text);
    assert.equal(await servedRootVersion(gun), 2);
  });

  test('a root threshold change from 1 to 2 with the current key kept', async () => {
    const gun = 'example.com/ceremony/one-to-two';
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    const second = certKey({ commonName: gun });
    const signed = rotatedRoot(repo, [repo.rootKey, second], 2);
    const staged = (await stage(gun, 'root', signed, [repo.rootKey])).body as Staged;
    // The kept key counts for both thresholds.
    assert.equal(byName(staged, 'current-root').needed, 0);
    assert.equal(byName(staged, 'root').needed, 1);
    assert.deepEqual(staged.pendingKeyIds, [second.keyId]);
    const r = await signWith(gun, staged.id, signed, second);
    assert.ok(r.body.published, r.text);
    const root = JSON.parse((await api().get(`/v2/${gun}/_trust/tuf/root.json`)).text) as { signed: { roles: { root: { threshold: number } } } };
    assert.equal(root.signed.roles.root.threshold, 2);
  });

  test('a delegation with a 2-of-2 threshold', async () => {
    const gun = 'example.com/ceremony/delegation';
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    const [alice, bob] = [ecdsaKey(), ecdsaKey()];
    const targets = signFile(targetsDoc({ version: 2, delegations: [{ name: 'targets/releases', keys: [alice, bob], threshold: 2 }] }), [repo.targetsKey]);
    assert.equal((await postUpdate(server.url, gun, { targets })).status, 200);
    const signed = targetsDoc({ targets: { v1: targetFile('image v1') } });
    const staged = (await stage(gun, 'targets/releases', signed, [alice])).body as Staged;
    assert.deepEqual(
      staged.thresholds!.map((t) => [t.name, t.threshold, t.needed]),
      [['targets/releases', 2, 1]],
    );
    assert.equal((await api().get(`/v2/${gun}/_trust/tuf/targets/releases.json`)).status, 404);
    const r = await signWith(gun, staged.id, signed, bob);
    assert.ok(r.body.published, r.text);
    assert.equal((await api().get(`/v2/${gun}/_trust/tuf/targets/releases.json`)).status, 200);
  });

  describe('refusals: a clear 4xx, nothing changed', () => {
    const gun = 'example.com/ceremony/refusals';
    let repo: TestRepository;
    let holders: TestKey[];
    let signed: Record<string, unknown>;
    let id: string;

    before(async () => {
      repo = await createRepository(server.url, gun, { serverSnapshot: true });
      holders = [1, 2, 3].map(() => certKey({ commonName: gun }));
      signed = rotatedRoot(repo, holders, 2);
      id = ((await stage(gun, 'root', signed, [repo.rootKey])).body as Staged).id;
    });

    async function refusedWithoutChange(send: () => Promise<request.Response>, status: number, code: string, detail?: RegExp, item = id) {
      const before = await storeSnapshot(db());
      const stagedBefore = (await api().get(`/api/v1/repositories/${gun}/staged/${item}`)).text;
      const res = await send();
      const error = assertRefused({ status: res.status, headers: res.headers, text: res.text }, status, code);
      if (detail) assert.match(String(error.detail), detail);
      assert.deepEqual(await storeSnapshot(db()), before, 'the refused request changed the store');
      assert.equal((await api().get(`/api/v1/repositories/${gun}/staged/${item}`)).text, stagedBefore, 'the refused request changed the staged update');
    }

    test('a key that may not sign it', async () => {
      await refusedWithoutChange(() => signWith(gun, id, signed, repo.targetsKey), 400, 'SIGNATURE_REFUSED', /may not sign/);
      await refusedWithoutChange(() => signWith(gun, id, signed, certKey({ commonName: gun })), 400, 'SIGNATURE_REFUSED', /may not sign/);
    });

    test('a signature over other bytes', async () => {
      const other = { ...signed, expires: '2030-01-01T00:00:00Z' };
      await refusedWithoutChange(() => signWith(gun, id, other, holders[0]!), 400, 'SIGNATURE_REFUSED', /does not verify over the staged bytes/);
      // A valid and an invalid one together: the whole request is refused.
      const good = signatureFor(holders[0]!, canonicalJson(signed));
      const bad = signatureFor(holders[1]!, canonicalJson(other));
      await refusedWithoutChange(() => sign(gun, id, [good, bad]), 400, 'SIGNATURE_REFUSED');
    });

    test('malformed requests', async () => {
      await refusedWithoutChange(() => sign(gun, id, []), 400, 'INVALID_PARAMETERS');
      await refusedWithoutChange(() => sign(gun, id, [{ keyid: 'x', method: 'ecdsa', sig: 'not base64!' }]), 400, 'INVALID_PARAMETERS');
      await refusedWithoutChange(
        () => api().post(`/api/v1/repositories/${gun}/staged/${id}/signatures`).set('Content-Type', 'application/json').send('{"signatures": ['),
        400,
        'MALFORMED_JSON',
      );
      await refusedWithoutChange(() => api().post(`/api/v1/repositories/${gun}/staged/${id}/signatures`).send('x=1'), 400, 'INVALID_PARAMETERS');
      await refusedWithoutChange(
        () => sign(gun, '00000000-0000-4000-8000-000000000000', [signatureFor(holders[0]!, canonicalJson(signed))]),
        404,
        'STAGED_NOT_FOUND',
      );
      await refusedWithoutChange(() => sign('example.com/ceremony/other', id, [signatureFor(holders[0]!, canonicalJson(signed))]), 404, 'STAGED_NOT_FOUND');
      await refusedWithoutChange(() => api().get(`/api/v1/staged?state=open`), 400, 'INVALID_PARAMETERS');
    });

    test('staging what no update could be', async () => {
      // Wrong version, expired, a snapshot, or already complete.
      await refusedWithoutChange(() => stage(gun, 'root', rotatedRoot(repo, holders, 2, 5)), 400, 'INVALID_UPDATE');
      await refusedWithoutChange(() => stage(gun, 'root', { ...rotatedRoot(repo, holders, 2), expires: '2020-01-01T00:00:00Z' }), 400, 'INVALID_UPDATE');
      await refusedWithoutChange(
        () => stage(gun, 'snapshot', { _type: 'Snapshot', version: 9, expires: '2030-01-01T00:00:00Z', meta: {} }),
        400,
        'STAGE_REFUSED',
      );
      await refusedWithoutChange(() => stage(gun, 'root', rotatedRoot(repo, [repo.rootKey], 1), [repo.rootKey]), 400, 'STAGE_REFUSED', /already meets/);
      await refusedWithoutChange(() => stage(gun, 'root', signed, [repo.targetsKey]), 400, 'SIGNATURE_REFUSED');
      // A threshold no signatures could meet: one of the two keys is a certificate for another repository.
      await refusedWithoutChange(
        () => stage(gun, 'root', rotatedRoot(repo, [holders[0]!, certKey({ commonName: 'example.com/elsewhere' })], 2)),
        400,
        'INVALID_UPDATE',
      );
      await refusedWithoutChange(() => stage(gun, 'root', signed, [], { expiresIn: 5 }), 400, 'INVALID_PARAMETERS');
      await refusedWithoutChange(() => stage(gun, 'root', signed, [], { surprise: true }), 400, 'INVALID_PARAMETERS');
    });

    test('after the repository moved on', async () => {
      const staged = (await stage(gun, 'targets', targetsDoc({ version: 2, targets: { a: targetFile('a') } }))).body as Staged;
      assert.equal(staged.state, 'pending');
      assert.equal((await postUpdate(server.url, gun, { targets: signFile(targetsDoc({ version: 2 }), [repo.targetsKey]) })).status, 200);
      const view = (await api().get(`/api/v1/repositories/${gun}/staged/${staged.id}`)).body as Staged;
      assert.match(view.outdated ?? '', /moved on: targets version 2/);
      const sig = signatureFor(repo.targetsKey, canonicalJson(view.signed));
      await refusedWithoutChange(() => sign(gun, staged.id, [sig]), 409, 'STAGED_OUTDATED', /moved on/, staged.id);
    });

    test('on a cancelled item', async () => {
      const staged = (await stage(gun, 'targets', targetsDoc({ version: 3 }))).body as Staged;
      const cancelled = await api().delete(`/api/v1/repositories/${gun}/staged/${staged.id}`);
      assert.equal(cancelled.status, 200, cancelled.text);
      assert.equal(cancelled.body.state, 'cancelled');
      const sig = signatureFor(repo.targetsKey, canonicalJson(targetsDoc({ version: 3 })));
      await refusedWithoutChange(() => sign(gun, staged.id, [sig]), 409, 'STAGED_CLOSED', /cancelled/, staged.id);
      await refusedWithoutChange(() => api().delete(`/api/v1/repositories/${gun}/staged/${staged.id}`), 409, 'STAGED_CLOSED', /cancelled/, staged.id);
    });

    test('on an expired item; the expiry is audited once', async () => {
      const doc = targetsDoc({ version: 4 });
      const staged = (await stage(gun, 'targets', doc, [], { expiresIn: 60 })).body as Staged;
      assert.equal(Date.parse(staged.expiresAt) - Date.parse(staged.createdAt), 60_000);
      const sig = signatureFor(repo.targetsKey, canonicalJson(doc));
      const realNow = server.context.now;
      server.context.now = () => realNow() + 120_000;
      try {
        await refusedWithoutChange(() => sign(gun, staged.id, [sig]), 410, 'STAGED_EXPIRED', /expired/, staged.id);
        assert.equal(((await api().get(`/api/v1/repositories/${gun}/staged/${staged.id}`)).body as Staged).state, 'expired');
        assert.equal(await expireStagedUpdates(server.context), 1);
        assert.equal(await expireStagedUpdates(server.context), 0);
        await refusedWithoutChange(() => sign(gun, staged.id, [sig]), 410, 'STAGED_EXPIRED', /expired/, staged.id);
      } finally {
        server.context.now = realNow;
      }
      const audit = (await api().get(`/_signet/audit?gun=${encodeURIComponent(gun)}`)).body as { records: { action: string; detail: { id?: string } }[] };
      assert.equal(audit.records.filter((a) => a.action === 'staged-expire' && a.detail.id === staged.id).length, 1);
      const all = (await api().get('/api/v1/staged?state=all')).body as { staged: Staged[] };
      assert.equal(all.staged.find((s) => s.id === staged.id)?.state, 'expired');
    });
  });
});

describe('the expiry watch closes expired staged updates', { timeout: 60_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ SIGNET_EXPIRY_SCAN_INTERVAL: '1' });
  });
  after(async () => {
    await server?.close();
  });

  test('an expired staged update is closed and audited by the background watch', async () => {
    const gun = 'example.com/ceremony/watched';
    const repo = await createRepository(server.url, gun, { serverSnapshot: true });
    const signed = rootDoc({ ...repo.rootSpec, version: 2, root: [certKey({ commonName: gun }), certKey({ commonName: gun })], rootThreshold: 2 });
    const res = await request(server.url)
      .post(`/api/v1/repositories/${gun}/staged`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ role: 'root', file: { signed, signatures: [] }, expiresIn: 60 }));
    assert.equal(res.status, 201, res.text);
    const realNow = server.context.now;
    server.context.now = () => realNow() + 3_600_000;
    try {
      let state = '';
      for (let i = 0; i < 100 && state !== 'expired'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const rows = await server.context.database.db.selectFrom('staged_updates').select('state').where('id', '=', res.body.id).execute();
        state = rows[0]!.state;
      }
      assert.equal(state, 'expired', 'closed by the watch');
    } finally {
      server.context.now = realNow;
    }
    const audit = (await request(server.url).get(`/_signet/audit?gun=${encodeURIComponent(gun)}`)).body as { records: { action: string; subject: string }[] };
    assert.deepEqual(
      audit.records.filter((r) => r.action === 'staged-expire').map((r) => r.subject),
      ['signet'],
    );
  });
});
