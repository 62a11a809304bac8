/**
 * `signet trust` / `signet verify` with the real clients, both ways, against Signet and against
 * the reference notary-server (memory store, local signing), over HTTPS, with a real
 * `docker-registry` holding real pushed manifests and a stand-in engine for the docker CLI:
 *
 * - a key made by `docker trust key generate` signs with `signet trust sign` (digest and size
 *   from the registry); `docker trust inspect` and `notary list` show the signature, and
 *   `DOCKER_CONTENT_TRUST=1 docker pull` pulls exactly that digest;
 * - a key made by `signet trust key generate` signs with `docker trust sign`, and
 *   `signet verify --signer` verifies it;
 * - what `notary addhash` + `notary publish` publishes is verified by `signet verify`.
 *
 * Every user is its own DOCKER_CONFIG (trust directory, CA in tls/<host:port>/ca.crt as docker
 * reads it); a "fresh" user has never seen the repository (trust on first use).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, SERVERS, Workbench, type TrustServerUnderTest, type Result } from '../support/interop.js';
import type { PushedImage } from '../support/registry.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['docker', 'docker-registry', 'notary', 'notary-server'].filter((c) => !has(c));
const skip = missing.length > 0 && !process.env['CI'] ? `missing ${missing.join(', ')}` : false;

function interop(label: string, start: (work: string) => Promise<TrustServerUnderTest>) {
  describe(`signet trust with docker trust and notary, against ${label}`, { skip, timeout: 600_000 }, () => {
    let bench: Workbench;
    const images: Record<string, PushedImage> = {};
    const user = () => bench.user();
    const envOf = (dir: string) => bench.envOf(dir);
    const signet = (dir: string, ...args: string[]) => bench.signet(dir, ...args);
    const docker = (dir: string, ...args: string[]) => bench.docker(dir, ...args);
    const notary = (dir: string, ...args: string[]) => bench.notary(dir, ...args);
    const image = (repo: string) => bench.image(repo);
    const ok = (r: Result) => bench.ok(r);

    before(async () => {
      bench = await Workbench.start(label, start);
      for (const repo of ['interop/docker-key', 'interop/signet-key', 'interop/notary']) images[repo] = await bench.registry.pushImage(repo, 'v1');
    });
    after(() => bench?.stop());

    test('a docker trust key signs with signet trust sign; docker trust inspect, notary list and a DCT pull agree', async () => {
      const pushed = images['interop/docker-key']!;
      const repo = image('interop/docker-key');
      const alice = user();
      ok(await docker(alice, 'trust', 'key', 'generate', 'alice', '--dir', alice));
      const keyFiles = readdirSync(path.join(alice, 'trust', 'private'));
      assert.equal(keyFiles.length, 1, 'docker wrote one private key');

      ok(await signet(alice, 'trust', 'signer', 'add', '--key', path.join(alice, 'alice.pub'), 'alice', repo));
      const signed = await signet(alice, 'trust', 'sign', `${repo}:v1`, '--json');
      ok(signed);
      const [outcome] = JSON.parse(signed.stdout) as { digest: string; length: number; roles: string[] }[];
      assert.equal(outcome!.digest, pushed.digest, 'the digest comes from the registry');
      assert.equal(outcome!.length, pushed.size);
      assert.deepEqual([...outcome!.roles].sort(), ['targets/alice', 'targets/releases']);
      assert.deepEqual(
        readdirSync(path.join(alice, 'trust', 'private')).filter((f) => keyFiles.includes(f)),
        keyFiles,
        'alice signed with the docker-made key',
      );

      const hex = pushed.digest.slice('sha256:'.length);
      const fresh = user();
      const pretty = await docker(fresh, 'trust', 'inspect', '--pretty', repo);
      ok(pretty);
      assert.match(pretty.stdout, new RegExp(`^v1\\s+${hex}\\s+alice$`, 'm'));
      const inspected = await docker(fresh, 'trust', 'inspect', `${repo}:v1`);
      ok(inspected);
      const ours = await signet(user(), 'trust', 'inspect', `${repo}:v1`);
      ok(ours);
      assert.deepEqual(JSON.parse(ours.stdout), JSON.parse(inspected.stdout), 'signet trust inspect prints exactly what docker trust inspect prints');
      const oursPretty = await signet(user(), 'trust', 'inspect', '--pretty', repo);
      ok(oursPretty);
      assert.equal(oursPretty.stdout, pretty.stdout, 'and --pretty prints the same tables');

      const listed = await notary(user(), 'list', repo);
      ok(listed);
      assert.match(listed.stdout, new RegExp(`^v1\\s+${hex}\\s+${pushed.size}\\s+targets/(releases|alice)`, 'm'));

      const puller = user();
      ok(await run('docker', ['pull', `${repo}:v1`], { ...envOf(puller), DOCKER_CONTENT_TRUST: '1' }));
      assert.ok(bench.engine.pulls.includes(`${repo}@${pushed.digest}`), `docker pulled the signed digest: ${bench.engine.pulls.join(', ')}`);

      // Key rotation: docker sees the new repository key, and the tag still verifies for everyone.
      for (const [role, flags] of [
        ['targets', []],
        ['snapshot', []],
        ['snapshot', ['--server-managed']],
      ] as const) {
        const rotated = await signet(alice, 'trust', 'key', 'rotate', repo, role, ...flags, '--json');
        ok(rotated);
        const { keyId } = JSON.parse(rotated.stdout) as { keyId: string };
        if (role === 'targets') {
          const admin = JSON.parse((await docker(user(), 'trust', 'inspect', repo)).stdout) as {
            AdministrativeKeys: { Name: string; Keys: { ID: string }[] }[];
          }[];
          assert.deepEqual(admin[0]!.AdministrativeKeys.find((k) => k.Name === 'Repository')!.Keys, [{ ID: keyId }]);
        }
        ok(await signet(puller, 'verify', `${repo}:v1`, '--signer', 'alice'));
        ok(await notary(puller, 'list', repo));
      }

      // Revocation: docker sees no signature any more, and a DCT pull is refused.
      ok(await signet(alice, 'trust', 'revoke', `${repo}:v1`));
      const after = await docker(user(), 'trust', 'inspect', '--pretty', repo);
      ok(after);
      assert.match(after.stdout, /No signatures for/);
      const pulls = bench.engine.pulls.length;
      const refused = await run('docker', ['pull', `${repo}:v1`], { ...envOf(puller), DOCKER_CONTENT_TRUST: '1' });
      assert.notEqual(refused.code, 0, refused.out);
      assert.equal(bench.engine.pulls.length, pulls, 'nothing pulled');
    });

    test('a signet key signs with docker trust sign, and signet verify checks the signer', async () => {
      const pushed = images['interop/signet-key']!;
      const repo = image('interop/signet-key');
      const bob = user();
      const generated = await signet(bob, 'trust', 'key', 'generate', 'bob', '--dir', bob, '--json');
      ok(generated);
      const { keyId } = JSON.parse(generated.stdout) as { keyId: string };
      ok(await docker(bob, 'trust', 'signer', 'add', '--key', path.join(bob, 'bob.pub'), 'bob', repo));
      const signed = await docker(bob, 'trust', 'sign', `${repo}:v1`);
      ok(signed);
      assert.match(signed.out, /Successfully signed/);

      const checker = user();
      const verified = await signet(checker, 'verify', `${repo}:v1`, '--signer', 'bob', '--json');
      ok(verified);
      const v = JSON.parse(verified.stdout) as { digest: string; signers: string[]; length: number };
      assert.equal(v.digest, pushed.digest);
      assert.equal(v.length, pushed.size);
      assert.deepEqual(v.signers, ['bob']);
      const inspected = JSON.parse((await signet(checker, 'trust', 'inspect', repo)).stdout) as { Signers: { Name: string; Keys: { ID: string }[] }[] }[];
      assert.deepEqual(inspected[0]!.Signers, [{ Name: 'bob', Keys: [{ ID: keyId }] }], 'the delegation lists the signet-made key');

      const refused = await signet(checker, 'verify', `${repo}:v1`, '--signer', 'bob', '--signer', 'carol');
      assert.equal(refused.code, 1, refused.out);
      assert.match(refused.out, /missing carol/);
      assert.doesNotMatch(refused.out, /\n\s+at /, 'no stack trace');
    });

    test('what notary addhash + publish signs is verified by signet verify', async () => {
      const pushed = images['interop/notary']!;
      const repo = image('interop/notary');
      const owner = user();
      ok(await notary(owner, 'init', repo));
      ok(await notary(owner, 'addhash', repo, 'v1', String(pushed.size), '--sha256', pushed.digest.slice('sha256:'.length)));
      ok(await notary(owner, 'publish', repo));
      const verified = await signet(user(), 'verify', `${repo}:v1`, '--json');
      ok(verified);
      const v = JSON.parse(verified.stdout) as { digest: string; role: string; signers: string[] };
      assert.equal(v.digest, pushed.digest);
      assert.equal(v.role, 'targets');
      assert.deepEqual(v.signers, ['Repo Admin']);
      const byDigest = await signet(user(), 'verify', `${repo}@${pushed.digest}`);
      ok(byDigest);
      assert.match(byDigest.stdout, /:v1 sha256:/);
    });

    test('signet cosign import-notary carries what notary signed over to Cosign, once per digest', async () => {
      const a = await bench.registry.pushImage('interop/cosign', 'a');
      const b = await bench.registry.pushImage('interop/cosign', 'b');
      const repo = image('interop/cosign');
      const owner = user();
      ok(await notary(owner, 'init', repo));
      for (const [tag, pushed] of [
        ['a', a],
        ['b', b],
        ['b-stable', b],
      ] as const) {
        ok(await notary(owner, 'addhash', repo, tag, String(pushed.size), '--sha256', pushed.digest.slice('sha256:'.length)));
      }
      ok(await notary(owner, 'publish', repo));
      const migrator = user();
      ok(await signet(migrator, 'cosign', 'generate-key-pair', '--output-key-prefix', path.join(migrator, 'cosign')));
      const key = path.join(migrator, 'cosign.key');
      const first = ok(await signet(migrator, 'cosign', 'import-notary', repo, '--key', key, '--json'));
      const report = JSON.parse(first.stdout) as { counts: Record<string, number>; signed: { digest: string; tags: string[] }[] };
      assert.deepEqual(report.counts, { tags: 3, digests: 2, signed: 2, skipped: 0, failed: 0 });
      assert.deepEqual(
        report.signed.map((e) => [e.digest, [...e.tags].sort()]).sort(),
        [
          [a.digest, ['a']],
          [b.digest, ['b', 'b-stable']],
        ].sort(),
      );
      const again = ok(await signet(migrator, 'cosign', 'import-notary', repo, '--key', key, '--json'));
      assert.equal((JSON.parse(again.stdout) as { counts: Record<string, number> }).counts['signed'], 0, 'a second run signs nothing');
      for (const pushed of [a, b]) ok(await signet(user(), 'cosign', 'verify', '--key', path.join(migrator, 'cosign.pub'), `${repo}@${pushed.digest}`));
    });
  });
}

for (const server of SERVERS) interop(server.label, server.start);
