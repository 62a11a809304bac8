/**
 * `signet cosign import-notary` on a Notary repository with 1,000 signed tags (1,000 images in a
 * real docker-registry, signed with `signet trust sign` on a Signet server): a run killed part way
 * resumes, every digest ends with exactly one Cosign signature, and a further run signs nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryClient, MEDIA_TYPES } from '../../src/registry/index.js';
import { SIGNET_MAIN, runSignet } from '../support/cli.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startTestServer, type TestServer } from '../support/server.js';

const TAGS = 1000;

interface ImportJson {
  counts: { tags: number; digests: number; signed: number; skipped: number; failed: number };
  skipped: { reason: string }[];
}

describe('import-notary at scale', { timeout: 600_000 }, () => {
  let server: TestServer;
  let registry: TestRegistry;
  let home: string;
  let client: RegistryClient;
  const digests: string[] = [];
  const repo = () => `${registry.host}/scale/many`;
  const env = () => ({
    DOCKER_CONFIG: home,
    DOCKER_CONTENT_TRUST_SERVER: server.url,
    CI: 'true',
    COSIGN_PASSWORD: 'scale-pass',
    DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'scale-root',
    DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'scale-repo',
  });
  const sigTags = async (): Promise<string[]> => {
    const res = await fetch(`${registry.url}/v2/scale/many/tags/list?n=100000`);
    const body = (await res.json()) as { tags?: string[] };
    return (body.tags ?? []).filter((t) => t.endsWith('.sig'));
  };

  before(async () => {
    server = await startTestServer();
    registry = await startRegistry();
    home = mkdtempSync(path.join(os.tmpdir(), 'signet-cosign-scale-'));
    client = new RegistryClient({ dockerConfigDir: home });
    const ref = { registry: registry.host, repository: 'scale/many' };
    const config = await client.pushBlob(ref, Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'));
    const tags: string[] = [];
    // 1,000 distinct images: one config, no layers, a different annotation each.
    for (let i = 0; i < TAGS; i += 50) {
      const batch = Array.from({ length: Math.min(50, TAGS - i) }, (_, j) => i + j);
      const stored = await Promise.all(
        batch.map((n) => {
          const manifest = {
            schemaVersion: 2,
            mediaType: MEDIA_TYPES.ociManifest,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
            layers: [],
            annotations: { 'org.example.build': String(n) },
          };
          return client.putManifest(ref, `t${String(n).padStart(4, '0')}`, Buffer.from(JSON.stringify(manifest)), MEDIA_TYPES.ociManifest);
        }),
      );
      for (const [j, s] of stored.entries()) {
        digests.push(s.digest);
        tags.push(`${repo()}:t${String(batch[j]).padStart(4, '0')}`);
      }
    }
    const key = await runSignet(['cosign', 'generate-key-pair', '--output-key-prefix', path.join(home, 'cosign')], env());
    assert.equal(key.code, 0, key.stderr);
    const signed = await runSignet(['trust', 'sign', '--signer', 'ci', ...tags], env(), { timeoutMs: 300_000 });
    assert.equal(signed.code, 0, signed.stderr);
  });
  after(async () => {
    client?.close();
    await server?.close();
    await registry?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('an interrupted run resumes; every digest gets exactly one signature; a second run signs nothing', async () => {
    assert.equal(new Set(digests).size, TAGS);
    const importArgs = ['cosign', 'import-notary', repo(), '--key', path.join(home, 'cosign.key'), '--json'];

    // A first run, killed once it has signed a hundred or so digests.
    const child = spawn(process.execPath, [SIGNET_MAIN, ...importArgs, '--concurrency', '2'], { env: { ...process.env, ...env() }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let atKill: number;
    for (;;) {
      atKill = (await sigTags()).length;
      if (atKill >= 100 || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    await exited;
    assert.ok(atKill >= 100 && atKill < TAGS, `killed part way (${atKill} signed when killed)`);
    // A manifest whose upload had reached the registry is still being stored for a moment.
    await new Promise((r) => setTimeout(r, 300));
    const afterKill = (await sigTags()).length;

    const resumed = await runSignet(importArgs, env(), { timeoutMs: 300_000 });
    assert.equal(resumed.code, 0, `${resumed.stderr}\n${resumed.stdout.slice(-3000)}`);
    const report = JSON.parse(resumed.stdout) as ImportJson;
    assert.equal(report.counts.tags, TAGS);
    assert.equal(report.counts.digests, TAGS);
    assert.equal(report.counts.failed, 0);
    assert.equal(report.counts.skipped, afterKill, 'what the killed run signed is skipped');
    assert.equal(report.counts.signed, TAGS - afterKill);
    assert.ok(report.skipped.every((s) => s.reason === 'already signed with this key'));

    // Exactly one signature (one layer) for every digest.
    const expected = new Set(digests.map((d) => `${d.replace(':', '-')}.sig`));
    const present = await sigTags();
    assert.equal(present.length, TAGS);
    assert.deepEqual(new Set(present), expected);
    const ref = { registry: registry.host, repository: 'scale/many' };
    for (let i = 0; i < digests.length; i += 50) {
      const layers = await Promise.all(
        digests.slice(i, i + 50).map(async (d) => {
          const m = await client.getManifest(client.at(ref, `${d.replace(':', '-')}.sig`));
          return (JSON.parse(m.bytes.toString()) as { layers: unknown[] }).layers.length;
        }),
      );
      assert.ok(
        layers.every((n) => n === 1),
        `one signature each, got ${layers.join(',')}`,
      );
    }

    const again = await runSignet(importArgs, env(), { timeoutMs: 300_000 });
    assert.equal(again.code, 0, again.stderr);
    const third = JSON.parse(again.stdout) as ImportJson;
    assert.deepEqual(third.counts, { tags: TAGS, digests: TAGS, signed: 0, skipped: TAGS, failed: 0 });
  });
});
