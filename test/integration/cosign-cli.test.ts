/**
 * `signet cosign …` and `signet trust sign --cosign-key`, as processes, against a real Signet
 * server and a real docker-registry: key pairs cosign can read, signatures pushed with exactly
 * cosign's tag names, media types and annotations, verification, and `import-notary` carrying a
 * Notary repository's signatures over. Bad input ends in one line and exit 2 (or 1), nothing
 * pushed.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  cosignDockerReference,
  cosignPublicKeyPem,
  readCosignPrivateKey,
  readCosignPublicKey,
  simpleSigningPayload,
  verifyMessage,
} from '../../src/cosign/index.js';
import { RegistryClient, parseImageReference } from '../../src/registry/index.js';
import { runSignet, type CliResult } from '../support/cli.js';
import { projectRoot } from '../support/paths.js';
import { startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';
import { startTestServer, type TestServer } from '../support/server.js';

const PASS = { DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'cosign-root-pass', DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'cosign-repo-pass' };
/** cosign's own test key (pkg/cosign/keys_test.go), password "hello". */
const COSIGN_MADE_KEY = path.join(projectRoot, 'test', 'fixtures', 'cosign', 'sigstore-label.key');

function failsWith(r: CliResult, exit: 1 | 2, pattern: RegExp): void {
  assert.equal(r.code, exit, `exit ${exit} expected:\n${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

interface RawManifest {
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
}

describe('signet cosign', { timeout: 240_000 }, () => {
  let server: TestServer;
  let registry: TestRegistry;
  let home: string;
  let reader: RegistryClient;
  let v1: PushedImage;

  const env = (extra: Record<string, string> = {}) => ({
    DOCKER_CONFIG: home,
    DOCKER_CONTENT_TRUST_SERVER: server.url,
    CI: 'true',
    COSIGN_PASSWORD: 'cosign-pass',
    ...PASS,
    ...extra,
  });
  const signet = (args: string[], extra: Record<string, string> = {}, opts: { timeoutMs?: number } = {}) => runSignet(args, env(extra), opts);
  const file = (name: string) => path.join(home, name);
  const sigTag = (digest: string) => `${digest.replace(':', '-')}.sig`;
  const sigManifest = async (repository: string, digest: string): Promise<RawManifest | undefined> => {
    try {
      const m = await reader.getManifest(`${registry.host}/${repository}:${sigTag(digest)}`);
      return JSON.parse(m.bytes.toString()) as RawManifest;
    } catch {
      return undefined;
    }
  };

  before(async () => {
    server = await startTestServer();
    registry = await startRegistry();
    home = mkdtempSync(path.join(os.tmpdir(), 'signet-cosign-cli-'));
    reader = new RegistryClient({ dockerConfigDir: home });
    v1 = await registry.pushImage('cosign/app', 'v1');
  });
  after(async () => {
    reader?.close();
    await server?.close();
    await registry?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('generate-key-pair writes a cosign.key cosign can open (0600) and its cosign.pub, and never overwrites', async () => {
    const prefix = file('made');
    const r = await signet(['cosign', 'generate-key-pair', '--output-key-prefix', prefix]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Private key written to .*made\.key\nPublic key written to .*made\.pub/);
    const keyText = readFileSync(`${prefix}.key`, 'utf8');
    assert.match(keyText, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    assert.equal(statSync(`${prefix}.key`).mode & 0o777, 0o600);
    const json = JSON.parse(Buffer.from(keyText.split('\n').slice(1, -2).join(''), 'base64').toString()) as {
      kdf: { name: string; params: { N: number; r: number; p: number } };
      cipher: { name: string };
    };
    assert.deepEqual(json.kdf.params, { N: 65536, r: 8, p: 1 });
    assert.equal(json.kdf.name, 'scrypt');
    assert.equal(json.cipher.name, 'nacl/secretbox');
    const priv = await readCosignPrivateKey(keyText, 'cosign-pass');
    const pub = readCosignPublicKey(readFileSync(`${prefix}.pub`));
    assert.equal(cosignPublicKeyPem(createPublicKey(priv)), cosignPublicKeyPem(pub));
    await assert.rejects(readCosignPrivateKey(keyText, 'wrong'), /password/i);

    const again = await signet(['cosign', 'generate-key-pair', '--output-key-prefix', prefix]);
    failsWith(again, 2, /made\.key exists already/);
    assert.equal(readFileSync(`${prefix}.key`, 'utf8'), keyText, 'the key is left as it was');
    const noPassword = await signet(['cosign', 'generate-key-pair', '--output-key-prefix', file('nopw')], { COSIGN_PASSWORD: '' });
    assert.equal(noPassword.code, 0, 'an empty COSIGN_PASSWORD is a password, as cosign reads it');
    const env2 = env();
    delete (env2 as Record<string, string | undefined>)['COSIGN_PASSWORD'];
    const unset = await runSignet(['cosign', 'generate-key-pair', '--output-key-prefix', file('unset')], env2, { isolated: true });
    failsWith(unset, 2, /COSIGN_PASSWORD/);
  });

  test('sign with a key cosign made writes cosign’s exact .sig manifest; verify accepts it and refuses another key', async () => {
    const image = `${registry.host}/cosign/app:v1`;
    const signed = await signet(['cosign', 'sign', '--key', COSIGN_MADE_KEY, image, '--json'], { COSIGN_PASSWORD: 'hello' });
    assert.equal(signed.code, 0, signed.stderr);
    const [result] = JSON.parse(signed.stdout) as { digest: string; tag: { tag: string; written: boolean } }[];
    assert.equal(result!.digest, v1.digest);
    assert.equal(result!.tag.tag, sigTag(v1.digest));

    // Byte level: what a real registry now holds is what cosign writes.
    const manifest = await sigManifest('cosign/app', v1.digest);
    assert.ok(manifest);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(manifest.layers.length, 1);
    const layer = manifest.layers[0]!;
    assert.equal(layer.mediaType, SIMPLE_SIGNING_MEDIA_TYPE);
    assert.deepEqual(Object.keys(layer.annotations ?? {}), [SIGNATURE_ANNOTATION]);
    const ref = parseImageReference(image);
    const payload = await reader.getBlob(ref, layer.digest);
    assert.equal(payload.toString(), simpleSigningPayload(cosignDockerReference(ref), v1.digest).toString());
    assert.equal(
      payload.toString(),
      `{"critical":{"identity":{"docker-reference":"${registry.host}/cosign/app"},"image":{"docker-manifest-digest":"${v1.digest}"},"type":"cosign container image signature"},"optional":null}`,
    );
    const cosignKey = await readCosignPrivateKey(readFileSync(COSIGN_MADE_KEY), 'hello');
    writeFileSync(file('fixture.pub'), cosignPublicKeyPem(createPublicKey(cosignKey)));
    assert.ok(verifyMessage(createPublicKey(cosignKey), payload, Buffer.from(layer.annotations![SIGNATURE_ANNOTATION]!, 'base64')));

    const verified = await signet(['cosign', 'verify', '--key', file('fixture.pub'), image]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, new RegExp(`cosign/app@${v1.digest} signed by .*fixture\\.pub \\(tag format\\)`));
    assert.match(verified.stderr, /The signatures were verified against the specified public key/);
    const byDigest = await signet(['cosign', 'verify', '--key', file('fixture.pub'), `${registry.host}/cosign/app@${v1.digest}`, '--json']);
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.equal((JSON.parse(byDigest.stdout) as { verified: boolean }).verified, true);

    writeFileSync(file('other.pub'), cosignPublicKeyPem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey));
    const other = await signet(['cosign', 'verify', '--key', file('other.pub'), image]);
    failsWith(other, 1, /no signature by .*other\.pub: tag signature 0: signed by none of the configured keys/);
    const unsigned = await registry.pushImage('cosign/app', 'unsigned');
    const none = await signet(['cosign', 'verify', '--key', file('fixture.pub'), `${registry.host}/cosign/app:unsigned`]);
    failsWith(none, 1, new RegExp(`${unsigned.digest}: no signature by .*: no signatures found`));
  });

  test('the bundle format, and both: verify finds each; a second signature by another key is added beside the first', async () => {
    const image = `${registry.host}/cosign/app:v1`;
    const both = await signet(['cosign', 'sign', '--key', file('made.key'), '--format', 'both', image, '-a', 'pipeline=release']);
    assert.equal(both.code, 0, both.stderr);
    assert.match(both.stdout, /pushed: .*\.sig; bundle sha256:[0-9a-f]{64} \(referrer, sha256-<hex> index\)/);
    const manifest = await sigManifest('cosign/app', v1.digest);
    assert.equal(manifest!.layers.length, 2, 'the cosign-made key’s signature stays');
    const bundleOnly = await signet(['cosign', 'verify', '--key', file('made.pub'), '--format', 'bundle', image, '--json']);
    assert.equal(bundleOnly.code, 0, bundleOnly.stderr);
    const report = JSON.parse(bundleOnly.stdout) as { evidence: { format: string; tlog: string }[] };
    assert.deepEqual(
      report.evidence.map((e) => [e.format, e.tlog]),
      [['bundle', 'none']],
    );
    const tagOnly = await signet(['cosign', 'verify', '--key', file('made.pub'), '--format', 'tag', image, '--json']);
    assert.equal(tagOnly.code, 0, tagOnly.stderr);
    const claims = JSON.parse(tagOnly.stdout) as { evidence: { annotations: Record<string, string> }[] };
    assert.deepEqual(claims.evidence[0]!.annotations, { pipeline: 'release' });
  });

  test('keys from env://NAME with COSIGN_PASSWORD, as the CI example does', async () => {
    const image = `${registry.host}/cosign/app:v1`;
    const keyText = readFileSync(file('made.key'), 'utf8');
    const r = await signet(['cosign', 'verify', '--key', 'env://COSIGN_PUBLIC_KEY', image], { COSIGN_PUBLIC_KEY: readFileSync(file('made.pub'), 'utf8') });
    assert.equal(r.code, 0, r.stderr);
    const pushed = await registry.pushImage('cosign/app', 'env');
    const s = await signet(['cosign', 'sign', '--key', 'env://COSIGN_KEY', `${registry.host}/cosign/app:env`], { COSIGN_KEY: keyText });
    assert.equal(s.code, 0, s.stderr);
    assert.equal((await sigManifest('cosign/app', pushed.digest))!.layers.length, 1);
  });

  test('bad input: one line, exit 2 or 1, nothing pushed', async () => {
    const pushed = await registry.pushImage('cosign/app', 'bad');
    const image = `${registry.host}/cosign/app:bad`;
    const cases: [string[], Record<string, string>, 1 | 2, RegExp][] = [
      [['cosign', 'sign', image], {}, 2, /--key KEY is needed/],
      [['cosign', 'sign', '--key', file('made.key'), '--format', 'sideways', image], {}, 2, /--format must be tag, bundle or both/],
      [['cosign', 'sign', '--key', file('made.key'), image], { COSIGN_PASSWORD: 'wrong' }, 2, /password/i],
      [['cosign', 'sign', '--key', file('missing.key'), image], {}, 2, /missing\.key: no such file/],
      [['cosign', 'sign', '--key', 'env://NOT_SET_ANYWHERE', image], {}, 2, /env:\/\/NOT_SET_ANYWHERE: the variable NOT_SET_ANYWHERE is not set/],
      [['cosign', 'sign', '--key', 'awskms:///alias/x', image], {}, 2, /awskms:\/\/ keys .* are not supported/],
      [['cosign', 'sign', '--key', file('made.pub'), image], {}, 2, /made\.pub/],
      [['cosign', 'sign', '--key', file('made.key'), `${registry.host}/cosign/app:no-such-tag`], {}, 1, /no-such-tag/],
      [['cosign', 'sign', '--key', file('made.key'), 'Not A Reference'], {}, 2, /Not A Reference|not valid|invalid/i],
      [['cosign', 'sign', '--key', file('made.key'), image, '-a', 'novalue'], {}, 2, /-a takes KEY=VALUE/],
      [['cosign', 'verify', '--key', file('made.key'), image], {}, 2, /made\.key/],
      [['cosign', 'frobnicate'], {}, 2, /unknown command "frobnicate"/],
      [['cosign', 'sign', '--key', file('made.key'), image, '--bogus'], {}, 2, /unknown option --bogus/],
      [['cosign', 'import-notary', `${registry.host}/cosign/app:v1`, '--key', file('made.key')], {}, 2, /REPO is a repository without a tag/],
      [['cosign', 'import-notary', `${registry.host}/cosign/app`, '--key', file('made.key'), '--concurrency', '0'], {}, 2, /--concurrency must be/],
    ];
    for (const [args, extra, exit, pattern] of cases) {
      const r = await signet(args, extra);
      failsWith(r, exit, pattern);
    }
    const json = await signet(['cosign', 'sign', '--key', file('made.key'), image, '--json'], { COSIGN_PASSWORD: 'wrong' });
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'PASSWORD_WRONG');
    assert.equal(await sigManifest('cosign/app', pushed.digest), undefined, 'nothing was pushed');
    const help = await signet(['cosign', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /import-notary REPO --key KEY/);
  });

  test('trust sign --cosign-key writes a Notary target and a Cosign signature of the same digest in one step', async () => {
    const v2 = await registry.pushImage('cosign/both', 'v2');
    const image = `${registry.host}/cosign/both:v2`;
    const wrong = await signet(['trust', 'sign', '--signer', 'ci', image, '--cosign-key', file('made.key')], { COSIGN_PASSWORD: 'wrong' });
    failsWith(wrong, 2, /password/i);
    const notYet = await signet(['trust', 'inspect', image]);
    assert.match(notYet.stderr + notYet.stdout, /no signatures|not initialized|has no trust data/i, 'nothing was published');

    const r = await signet(['trust', 'sign', '--signer', 'ci', image, '--cosign-key', file('made.key')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Successfully signed .*cosign\/both:v2\nPushed the Cosign signature of sha256:[0-9a-f]{64} \(sha256-[0-9a-f]{64}\.sig\)/);
    const notary = await signet(['verify', image, '--json']);
    assert.equal(notary.code, 0, notary.stderr);
    assert.equal((JSON.parse(notary.stdout) as { digest: string }).digest, v2.digest);
    const cosign = await signet(['cosign', 'verify', '--key', file('made.pub'), image]);
    assert.equal(cosign.code, 0, cosign.stderr);
    const bad = await signet(['trust', 'sign', image, '--cosign-format', 'both']);
    failsWith(bad, 2, /--cosign-format goes with --cosign-key/);
  });

  test('import-notary: one signature per signed digest, skips with reasons, --dry-run, --signer, and a second run signs nothing', async () => {
    const repo = `${registry.host}/cosign/legacy`;
    const a = await registry.pushImage('cosign/legacy', 'a');
    // Two tags naming one digest, and a tag whose image is no longer in the registry.
    const gone = `sha256:${createHash('sha256').update('deleted image').digest('hex')}`;
    const b = await registry.pushImage('cosign/legacy', 'b');
    for (const args of [
      ['trust', 'sign', '--signer', 'ci', `${repo}:a`, `${repo}:b`],
      ['trust', 'sign', '--digest', a.digest, '--size', String(a.size), `${repo}:a-again`],
      ['trust', 'sign', '--digest', gone, '--size', '1234', `${repo}:gone`],
    ]) {
      const r = await signet(args);
      assert.equal(r.code, 0, r.stderr);
    }
    const dry = await signet(['cosign', 'import-notary', repo, '--key', file('made.key'), '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout) as { counts: Record<string, number>; signed: { digest: string; tags: string[] }[] };
    assert.deepEqual(planned.counts, { tags: 4, digests: 3, signed: 2, skipped: 1, failed: 0 });
    assert.equal(await sigManifest('cosign/legacy', a.digest), undefined, '--dry-run writes nothing');

    const other = await signet(['cosign', 'import-notary', repo, '--key', file('made.key'), '--signer', 'qa', '--json']);
    assert.equal(other.code, 0, other.stderr);
    const filtered = JSON.parse(other.stdout) as { counts: Record<string, number>; skipped: { reason: string }[] };
    assert.equal(filtered.counts['signed'], 0);
    assert.match(filtered.skipped[0]!.reason, /not signed by qa \(signed by ci\)/);

    const first = await signet(['cosign', 'import-notary', repo, '--key', file('made.key'), '--json']);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as {
      signed: { digest: string; tags: string[] }[];
      skipped: { digest: string; tags: string[]; reason: string }[];
      counts: Record<string, number>;
    };
    assert.deepEqual(
      report.signed.map((e) => [e.digest, e.tags.sort()]),
      [
        [a.digest, ['a', 'a-again']],
        [b.digest, ['b']],
      ],
    );
    assert.deepEqual(report.skipped, [{ digest: gone, tags: ['gone'], reason: 'the registry has no image with this digest' }]);
    for (const d of [a.digest, b.digest]) assert.equal((await sigManifest('cosign/legacy', d))!.layers.length, 1);

    const second = await signet(['cosign', 'import-notary', repo, '--key', file('made.key')]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /3 digests: 0 signed, 3 skipped, 0 failed/);
    assert.match(second.stdout, /skipped sha256:[0-9a-f]{64} \(b\): already signed with this key/);
    for (const d of [a.digest, b.digest]) assert.equal((await sigManifest('cosign/legacy', d))!.layers.length, 1, 'still one signature');
    const verified = await signet(['cosign', 'verify', '--key', file('made.pub'), `${repo}@${a.digest}`]);
    assert.equal(verified.code, 0, verified.stderr);

    const unknown = await signet(['cosign', 'import-notary', `${registry.host}/cosign/never-signed`, '--key', file('made.key')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /never-signed/);
  });
});

describe('signet cosign against a registry with token auth', { timeout: 120_000 }, () => {
  let registry: TestRegistry;
  let home: string;
  const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');
  const as = (user: string, password: string) => {
    const dir = mkdtempSync(path.join(home, `${user}-`));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: basic(user, password) } } }));
    return { DOCKER_CONFIG: dir, CI: 'true', COSIGN_PASSWORD: 'auth-pass' };
  };

  before(async () => {
    registry = await startRegistry({
      users: [
        { name: 'ci', password: 'ci-secret', repositories: ['team/'], actions: ['pull', 'push'] },
        { name: 'reader', password: 'reader-secret', repositories: ['team/'], actions: ['pull'] },
      ],
    });
    home = mkdtempSync(path.join(os.tmpdir(), 'signet-cosign-auth-'));
    const r = await runSignet(['cosign', 'generate-key-pair', '--output-key-prefix', path.join(home, 'cosign')], { COSIGN_PASSWORD: 'auth-pass' });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await registry?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('the docker config’s credentials get tokens for the pushes (blobs, manifest, referrers index); a reader may verify but not sign', async () => {
    const pushed = await registry.pushImage('team/app', 'v1');
    const image = `${registry.host}/team/app:v1`;
    const key = path.join(home, 'cosign.key');
    const pub = path.join(home, 'cosign.pub');
    const refused = await runSignet(['cosign', 'sign', '--key', key, image], as('reader', 'reader-secret'));
    failsWith(refused, 1, /team\/app.*(push|denied|refused|UNAUTHORIZED)/i);
    assert.doesNotMatch(refused.stderr, /reader-secret/);
    const signed = await runSignet(['cosign', 'sign', '--key', key, '--format', 'both', image], as('ci', 'ci-secret'));
    assert.equal(signed.code, 0, signed.stderr);
    const verified = await runSignet(['cosign', 'verify', '--key', pub, image, '--json'], as('reader', 'reader-secret'));
    assert.equal(verified.code, 0, verified.stderr);
    const v = JSON.parse(verified.stdout) as { digest: string; evidence: { format: string }[] };
    assert.equal(v.digest, pushed.digest);
    assert.equal(v.evidence.length, 1, 'one piece of evidence per key');
    const bundle = await runSignet(['cosign', 'verify', '--key', pub, '--format', 'bundle', image], as('reader', 'reader-secret'));
    assert.equal(bundle.code, 0, `the bundle and the referrers index were pushed with the token too: ${bundle.stderr}`);
    const anonymous = await runSignet(['cosign', 'verify', '--key', pub, image], { DOCKER_CONFIG: mkdtempSync(path.join(home, 'anon-')), CI: 'true' });
    failsWith(anonymous, 1, /anonymous|UNAUTHORIZED|credentials/i);
  });
});
