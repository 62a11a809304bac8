/**
 * Key ceremonies end to end: Signet over HTTPS (its own process), a real registry, and each key
 * holder a separate `signet trust` process with its own DOCKER_CONFIG holding only its own key.
 * Between rounds the real `notary` CLI reads the repository and must still see the old state;
 * once the last threshold is met, `notary list` and `docker trust inspect` accept the result.
 *
 * - a 2-of-3 root rotation (the old root's holder and two of three new holders);
 * - 3-of-5, with one holder signing twice (counted once);
 * - a root threshold change from 1 to 2, the current key kept;
 * - a delegation with a 2-of-2 threshold (`signer add --threshold 2`, `sign --stage`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SERVERS, Workbench, type Result } from '../support/interop.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['docker', 'docker-registry', 'notary'].filter((c) => !has(c));
const skip = missing.length > 0 && !process.env['CI'] ? `missing ${missing.join(', ')}` : false;

interface StagedJson {
  id: string;
  gun: string;
  state: string;
  pendingKeyIds: string[];
  thresholds: { name: string; threshold: number; needed: number; signedBy: string[] }[] | null;
}

describe('key ceremonies with separate holders, read by notary and docker trust', { skip, timeout: 900_000 }, () => {
  let bench: Workbench;
  const signet = (dir: string, ...args: string[]) => bench.signet(dir, ...args);
  const ok = (r: Result) => bench.ok(r);
  const json = <T>(r: Result): T => JSON.parse(ok(r).stdout) as T;

  before(async () => {
    bench = await Workbench.start('ceremonies', SERVERS[0]!.start);
  });
  after(() => bench?.stop());

  /** A repository with one signed tag, created by `owner` (root key 1-of-1). */
  async function repository(name: string): Promise<{ repo: string; owner: string; digest: string }> {
    const pushed = await bench.registry.pushImage(name, 'v1');
    const repo = bench.image(name);
    const owner = bench.user();
    ok(await signet(owner, 'trust', 'sign', `${repo}:v1`, '--signer', 'owner'));
    return { repo, owner, digest: pushed.digest };
  }

  /** The root version the real notary CLI trusts after reading the repository with `reader`'s trust directory. */
  async function notaryRootVersion(reader: string, repo: string): Promise<number> {
    const listed = ok(await bench.notary(reader, 'list', repo));
    assert.match(listed.stdout, /^v1\s/m, 'notary lists the signed tag');
    const root = JSON.parse(readFileSync(path.join(reader, 'trust', 'tuf', repo, 'metadata', 'root.json'), 'utf8')) as {
      signed: { version: number; roles: { root: { keyids: string[]; threshold: number } } };
    };
    return root.signed.version;
  }

  /** Holders, each its own user with a root key for `repo` and its certificate. */
  async function holders(repo: string, n: number): Promise<{ dir: string; cert: string }[]> {
    const out = [];
    for (let i = 1; i <= n; i++) {
      const dir = bench.user();
      ok(await signet(dir, 'trust', 'key', 'generate', `holder${i}`, '--root', repo, '--dir', dir));
      out.push({ dir, cert: path.join(dir, `holder${i}.crt`) });
    }
    return out;
  }

  const needed = (s: StagedJson) => Object.fromEntries((s.thresholds ?? []).map((t) => [t.name, t.needed]));

  test('a 2-of-3 root rotation', async () => {
    const { repo, owner, digest } = await repository('ceremony/two-of-three');
    const reader = bench.user();
    assert.equal(await notaryRootVersion(reader, repo), 1);
    const [a, b, c] = await holders(repo, 3);

    const staged = json<{ staged: StagedJson; published: boolean }>(
      await signet(
        owner,
        'trust',
        'stage',
        'root-rotate',
        repo,
        '--new-key',
        a!.cert,
        '--new-key',
        b!.cert,
        '--new-key',
        c!.cert,
        '--threshold',
        '2',
        '--json',
      ),
    );
    assert.equal(staged.published, false);
    const ref = `${staged.staged.gun}@${staged.staged.id}`;
    assert.deepEqual(needed(staged.staged), { 'current-root': 0, root: 2 }, 'the owner signed as the current root; two new holders to go');
    assert.equal(await notaryRootVersion(reader, repo), 1, 'nothing staged is served');

    // A holder reviews it: what is signed, the diff, who still has to sign.
    const shown = ok(await signet(a!.dir, 'trust', 'stage', 'show', ref));
    assert.match(shown.stdout, /~ version: 1 → 2/);
    assert.match(shown.stdout, /~ roles\.root\.threshold: 1 → 2/);
    assert.match(shown.stdout, /root: 0 of 2 signed, 2 more needed/);
    assert.match(shown.stdout, /may be signed here by: [0-9a-f]{64}/);
    // The staged update is listed for the repository and across repositories.
    assert.ok(json<StagedJson[]>(await signet(b!.dir, 'trust', 'stage', 'list', repo, '--json')).some((s) => s.id === staged.staged.id));
    assert.ok(json<StagedJson[]>(await signet(b!.dir, 'trust', 'stage', 'list', '--json')).some((s) => s.id === staged.staged.id));

    const round1 = json<{ published: unknown; staged: StagedJson }>(await signet(a!.dir, 'trust', 'stage', 'sign', ref, '--json'));
    assert.equal(round1.published, null);
    assert.deepEqual(needed(round1.staged), { 'current-root': 0, root: 1 });
    assert.equal(await notaryRootVersion(reader, repo), 1, 'one of two new signatures: still not served');
    assert.equal(await notaryRootVersion(bench.user(), repo), 1, 'nor to a new reader');

    const round2 = json<{ published: { role: string; version: number }[] }>(await signet(c!.dir, 'trust', 'stage', 'sign', ref, '--json'));
    assert.deepEqual(round2.published[0], { role: 'root', version: 2 });
    assert.equal(await notaryRootVersion(reader, repo), 2, 'notary follows the rotation from the root it trusted');
    assert.equal(await notaryRootVersion(bench.user(), repo), 2);

    const inspected = JSON.parse(ok(await bench.docker(bench.user(), 'trust', 'inspect', `${repo}:v1`)).stdout) as {
      SignedTags: { SignedTag: string; Digest: string }[];
      AdministrativeKeys: { Name: string; Keys: { ID: string }[] }[];
    }[];
    assert.equal(inspected[0]!.SignedTags[0]!.Digest, digest.slice('sha256:'.length));
    assert.equal(inspected[0]!.AdministrativeKeys.find((k) => k.Name === 'Root')!.Keys.length, 3, 'docker trust inspect shows the three new root keys');
    // The repository keeps working: the owner signs a new tag with the unchanged targets key.
    await bench.registry.pushImage('ceremony/two-of-three', 'v2');
    ok(await signet(owner, 'trust', 'sign', `${repo}:v2`));
    ok(await bench.notary(reader, 'list', repo));
    // Holder b no longer can sign anything: the item is closed.
    const late = await signet(b!.dir, 'trust', 'stage', 'sign', ref);
    assert.equal(late.code, 1, late.out);
    assert.match(late.out, /published/);
  });

  test('3-of-5: a holder who signs twice is counted once', async () => {
    const { repo, owner } = await repository('ceremony/three-of-five');
    const reader = bench.user();
    const keys = await holders(repo, 5);
    const staged = json<{ staged: StagedJson }>(
      await signet(owner, 'trust', 'stage', 'root-rotate', repo, ...keys.flatMap((k) => ['--new-key', k.cert]), '--threshold', '3', '--json'),
    ).staged;
    const ref = `${staged.gun}@${staged.id}`;
    ok(await signet(keys[0]!.dir, 'trust', 'stage', 'sign', ref));
    const twice = json<{ alreadySigned: string[]; staged: StagedJson }>(await signet(keys[0]!.dir, 'trust', 'stage', 'sign', ref, '--json'));
    assert.equal(twice.alreadySigned.length, 1);
    assert.deepEqual(needed(twice.staged), { 'current-root': 0, root: 2 }, 'counted once');
    ok(await signet(keys[3]!.dir, 'trust', 'stage', 'sign', ref));
    assert.equal(await notaryRootVersion(reader, repo), 1);
    const last = json<{ published: unknown }>(await signet(keys[4]!.dir, 'trust', 'stage', 'sign', ref, '--json'));
    assert.ok(last.published);
    assert.equal(await notaryRootVersion(reader, repo), 2);
    ok(await bench.docker(bench.user(), 'trust', 'inspect', `${repo}:v1`));
  });

  test('a root threshold change from 1 to 2, the current key kept', async () => {
    const { repo, owner } = await repository('ceremony/one-to-two');
    const reader = bench.user();
    const [second] = await holders(repo, 1);
    const staged = json<{ staged: StagedJson }>(
      await signet(owner, 'trust', 'stage', 'root-rotate', repo, '--keep-current', '--new-key', second!.cert, '--threshold', '2', '--json'),
    ).staged;
    assert.deepEqual(needed(staged), { 'current-root': 0, root: 1 });
    assert.equal(await notaryRootVersion(reader, repo), 1);
    ok(await signet(second!.dir, 'trust', 'stage', 'sign', `${staged.gun}@${staged.id}`));
    assert.equal(await notaryRootVersion(reader, repo), 2);
    const root = JSON.parse(readFileSync(path.join(reader, 'trust', 'tuf', repo, 'metadata', 'root.json'), 'utf8')) as {
      signed: { roles: { root: { keyids: string[]; threshold: number } } };
    };
    assert.equal(root.signed.roles.root.threshold, 2);
    assert.equal(root.signed.roles.root.keyids.length, 2);
    ok(await bench.docker(bench.user(), 'trust', 'inspect', `${repo}:v1`));
  });

  test('a delegation with a 2-of-2 threshold', async () => {
    const { repo, owner } = await repository('ceremony/delegation');
    const pushed = await bench.registry.pushImage('ceremony/delegation', 'v2');
    const [alice, bob] = [bench.user(), bench.user()];
    ok(await signet(alice, 'trust', 'key', 'generate', 'alice', '--dir', alice));
    ok(await signet(bob, 'trust', 'key', 'generate', 'bob', '--dir', bob));
    ok(
      await signet(
        owner,
        'trust',
        'signer',
        'add',
        '--key',
        path.join(alice, 'alice.pub'),
        '--key',
        path.join(bob, 'bob.pub'),
        '--threshold',
        '2',
        'pair',
        repo,
      ),
    );
    const staged = json<StagedJson & { role: string }>(await signet(alice, 'trust', 'sign', `${repo}:v2`, '--stage', '--role', 'targets/pair', '--json'));
    assert.equal(staged.role, 'targets/pair');
    assert.deepEqual(needed(staged), { 'targets/pair': 1 });
    const reader = bench.user();
    const before = ok(await bench.notary(reader, 'list', repo));
    assert.doesNotMatch(before.stdout, /^v2\s/m, 'the staged tag is not served');
    ok(await signet(bob, 'trust', 'stage', 'sign', `${staged.gun}@${staged.id}`));
    const listed = ok(await bench.notary(reader, 'list', repo));
    assert.match(listed.stdout, new RegExp(`^v2\\s+${pushed.digest.slice(7)}\\s+${pushed.size}\\s+targets/pair`, 'm'));
    // docker trust inspect accepts the repository and shows the 2-key signer (docker lists as
    // signed tags only those in targets/releases, which the pair's delegation is not).
    const pretty = ok(await bench.docker(bench.user(), 'trust', 'inspect', '--pretty', repo));
    assert.match(pretty.stdout, /^pair\s+[0-9a-f]{12}, [0-9a-f]{12}$/m);
  });

  test('refusals through the commands: one line, the right exit status, nothing published', async () => {
    const { repo, owner } = await repository('ceremony/refusals');
    const reader = bench.user();
    const [a, b] = await holders(repo, 2);
    const oneLine = (r: Result, code: number, pattern: RegExp) => {
      assert.equal(r.code, code, r.out);
      const lines = r.out.trim().split('\n').slice(1); // after the command line
      assert.equal(lines.length, 1, r.out);
      assert.match(lines[0]!, pattern);
    };
    oneLine(await signet(a!.dir, 'trust', 'stage', 'sign', 'not-an-id'), 2, /is not a staged update ID/);
    oneLine(
      await signet(owner, 'trust', 'stage', 'root-rotate', repo, '--new-key', a!.cert, '--threshold', '2'),
      2,
      /threshold must be between 1 and the number of new root keys \(1\)/,
    );
    // A certificate made for another repository: the server refuses the new root.
    const stranger = bench.user();
    ok(await signet(stranger, 'trust', 'key', 'generate', 'x', '--root', `${repo}-other`, '--dir', stranger));
    oneLine(
      await signet(owner, 'trust', 'stage', 'root-rotate', repo, '--new-key', path.join(stranger, 'x.crt'), '--new-key', a!.cert, '--threshold', '2'),
      1,
      /refused: INVALID_UPDATE.*can never be met.*does not match/,
    );

    const staged = json<{ staged: StagedJson }>(
      await signet(owner, 'trust', 'stage', 'root-rotate', repo, '--new-key', a!.cert, '--new-key', b!.cert, '--threshold', '2', '--json'),
    ).staged;
    const ref = `${staged.gun}@${staged.id}`;
    oneLine(await signet(bench.user(), 'trust', 'stage', 'sign', ref), 1, /no key in .* may sign staged update/);
    ok(await signet(a!.dir, 'trust', 'stage', 'sign', ref));
    // The repository moves on: the owner, holding every key needed, rotates to a root of its own.
    const direct = json<{ published: boolean }>(await signet(owner, 'trust', 'stage', 'root-rotate', repo, '--json'));
    assert.equal(direct.published, true);
    oneLine(await signet(b!.dir, 'trust', 'stage', 'sign', ref), 1, /STAGED_OUTDATED.*moved on: root version 2 is current/);
    assert.equal(await notaryRootVersion(reader, repo), 2, 'the direct rotation, not the staged one');
    const root = JSON.parse(readFileSync(path.join(reader, 'trust', 'tuf', repo, 'metadata', 'root.json'), 'utf8')) as {
      signed: { roles: { root: { keyids: string[] } } };
    };
    assert.equal(root.signed.roles.root.keyids.length, 1);

    // Cancelled: nobody can sign it any more.
    const again = json<{ staged: StagedJson }>(
      await signet(owner, 'trust', 'stage', 'root-rotate', repo, '--new-key', a!.cert, '--new-key', b!.cert, '--threshold', '2', '--json'),
    ).staged;
    ok(await signet(a!.dir, 'trust', 'stage', 'cancel', `${again.gun}@${again.id}`));
    oneLine(await signet(b!.dir, 'trust', 'stage', 'sign', `${again.gun}@${again.id}`), 1, /is cancelled/);
    assert.equal(await notaryRootVersion(reader, repo), 2);
  });
});
