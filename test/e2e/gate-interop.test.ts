/**
 * The deploy gate against trust data published by the real clients: `docker trust` (signers
 * alice and bob with docker-made keys, the stand-in engine for the first signature) and the
 * `notary` CLI (a repository signed with its own targets key), on Signet and on the reference
 * notary-server, over HTTPS. The gate pins the repositories' root keys (docker reuses one root
 * key for every repository a user creates, each time in a new certificate: one pinned key serves
 * both) and answers over HTTPS with a test CA, as the API server calls it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startGateServer, type RunningGate } from '../../src/gate/gate-server.js';
import { parsePolicy } from '../../src/gate/policy.js';
import { createLogger } from '../../src/log.js';
import { admissionReview, objectOf } from '../support/gate.js';
import { SERVERS, Workbench } from '../support/interop.js';
import type { PushedImage } from '../support/registry.js';
import { makeTestTls, type TestTls } from '../support/tls.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = ['docker', 'docker-registry', 'notary', 'notary-server'].filter((c) => !has(c));
const skip = missing.length > 0 && !process.env['CI'] ? `missing ${missing.join(', ')}` : false;

interface Verdict {
  allowed: boolean;
  digest: string | null;
  signers: string[];
  reasons: string[];
}

function post(gate: RunningGate, ca: string, route: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${gate.url}${route}`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

for (const { label, start } of SERVERS) {
  describe(`signet gate with trust data from docker trust and notary, on ${label}`, { skip, timeout: 600_000 }, () => {
    let bench: Workbench;
    let gate: RunningGate;
    let gateTls: TestTls;
    const pushed: Record<string, PushedImage> = {};
    let app: string;
    let notaryRepo: string;
    let rootKeysFile: string;

    const policyFor = (rule: string) =>
      parsePolicy(
        `version: 1
trust:
  server:
    notary: ${bench.server.url}
    ca: ${bench.server.ca}
    rootKeys: [${rootKeysFile}]
cache:
  refreshSeconds: 1
rules:
${rule}
  - images: ["**"]
    action: deny
`,
        path.join(bench.work, 'policy.yaml'),
      );
    const verify = async (image: string): Promise<Verdict> => {
      const { status, json } = await post(gate, readFileSync(gateTls.caCert, 'utf8'), '/v1/verify', { image });
      assert.equal(status, 200);
      return json as Verdict;
    };

    before(async () => {
      bench = await Workbench.start(`gate ${label}`, start);
      for (const tag of ['v1', 'v2', 'v3', 'v4']) pushed[tag] = await bench.registry.pushImage('gate/app', tag);
      pushed['n1'] = await bench.registry.pushImage('gate/notary', 'v1');
      app = bench.image('gate/app');
      notaryRepo = bench.image('gate/notary');

      // alice owns gate/app and signs v1, v2, v4 with docker trust; bob signs v1 too.
      const alice = bench.user();
      const bob = bench.user();
      bench.ok(await bench.docker(alice, 'trust', 'key', 'generate', 'alice', '--dir', alice));
      bench.ok(await bench.docker(bob, 'trust', 'key', 'generate', 'bob', '--dir', bob));
      bench.ok(await bench.docker(alice, 'trust', 'signer', 'add', '--key', path.join(alice, 'alice.pub'), 'alice', app));
      bench.ok(await bench.docker(alice, 'trust', 'signer', 'add', '--key', path.join(bob, 'bob.pub'), 'bob', app));
      for (const tag of ['v1', 'v2', 'v4']) bench.ok(await bench.docker(alice, 'trust', 'sign', `${app}:${tag}`));
      bench.ok(await bench.docker(bob, 'trust', 'sign', `${app}:v1`));
      bench.ok(await bench.docker(alice, 'trust', 'revoke', '--yes', `${app}:v4`));

      // gate/notary: signed by the notary CLI into targets.
      const owner = bench.user();
      bench.ok(await bench.notary(owner, 'init', notaryRepo));
      bench.ok(await bench.notary(owner, 'addhash', notaryRepo, 'v1', String(pushed['n1'].size), '--sha256', pushed['n1'].digest.slice('sha256:'.length)));
      bench.ok(await bench.notary(owner, 'publish', notaryRepo));

      // Pin the root keys as an operator would: the certificates of the first roots.
      const pems: string[] = [];
      for (const gun of [app, notaryRepo]) {
        const res = spawnSync('curl', ['-sf', '--cacert', bench.server.ca, `${bench.server.url}/v2/${gun}/_trust/tuf/1.root.json`]);
        assert.equal(res.status, 0, `1.root.json of ${gun}`);
        const root = JSON.parse(res.stdout.toString()) as {
          signed: { keys: Record<string, { keyval: { public: string } }>; roles: { root: { keyids: string[] } } };
        };
        pems.push(Buffer.from(root.signed.keys[root.signed.roles.root.keyids[0]!]!.keyval.public, 'base64').toString());
      }
      rootKeysFile = path.join(bench.work, 'root-keys.pem');
      writeFileSync(rootKeysFile, pems.join('\n'));

      gateTls = makeTestTls();
      gate = await startGateServer(policyFor(`  - images: ["${app}"]\n    trust: server`), {
        host: '127.0.0.1',
        port: 0,
        tls: { cert: readFileSync(gateTls.cert, 'utf8'), key: readFileSync(gateTls.key, 'utf8') },
        logger: createLogger('silent'),
      });
    });
    after(async () => {
      await gate?.close();
      if (gateTls) rmSync(gateTls.dir, { recursive: true, force: true });
      await bench?.stop();
    });

    test('signed by alice and bob: allowed under "alice and bob", and /mutate pins the signed digest', async () => {
      gate.setPolicy(policyFor(`  - images: ["${app}"]\n    trust: server\n    signers: [alice, bob]\n    pinDigest: true`));
      const v = await verify(`${app}:v1`);
      assert.equal(v.allowed, true, v.reasons.join('; '));
      assert.equal(v.digest, pushed['v1']!.digest);
      assert.deepEqual([...v.signers].sort(), ['alice', 'bob']);
      const review = admissionReview('Deployment', objectOf('Deployment', { containers: [`${app}:v1`] }, 'web', 'shop'), {
        username: 'system:serviceaccount:argocd:argocd-application-controller',
      });
      const { json } = await post(gate, readFileSync(gateTls.caCert, 'utf8'), '/mutate', review);
      const response = (json as { response: { uid: string; allowed: boolean; patch?: string; patchType?: string } }).response;
      assert.equal(response.uid, review.request.uid);
      assert.equal(response.allowed, true);
      assert.equal(response.patchType, 'JSONPatch');
      assert.deepEqual(JSON.parse(Buffer.from(response.patch!, 'base64').toString()), [
        { op: 'replace', path: '/spec/template/spec/containers/0/image', value: `${app}:v1@${pushed['v1']!.digest}` },
      ]);
    });

    test('signed by alice only: refused below the threshold, allowed when alice alone is asked for', async () => {
      gate.setPolicy(policyFor(`  - images: ["${app}"]\n    trust: server\n    signers: [alice, bob]\n    threshold: 2`));
      const below = await verify(`${app}:v2`);
      assert.equal(below.allowed, false);
      assert.match(below.reasons.join(' '), /missing bob/);
      gate.setPolicy(policyFor(`  - images: ["${app}"]\n    trust: server\n    signers: [alice]`));
      const alone = await verify(`${app}:v2`);
      assert.equal(alone.allowed, true, alone.reasons.join('; '));
      assert.equal(alone.digest, pushed['v2']!.digest);
    });

    test('the wrong signer, an unsigned tag, a revoked tag, a digest nobody signed, a tag and digest that disagree: denied with the reason', async () => {
      gate.setPolicy(policyFor(`  - images: ["${app}"]\n    trust: server\n    signers: [carol]`));
      assert.match((await verify(`${app}:v1`)).reasons.join(' '), /no signed digest .* by carol/);
      gate.setPolicy(policyFor(`  - images: ["${app}"]\n    trust: server`));
      for (const [image, reason] of [
        [`${app}:v3`, /no signed digest for .*:v3/],
        [`${app}:v4`, /no signed digest for .*:v4/],
        [`${app}@${pushed['v3']!.digest}`, /no signed digest/],
        [`${app}:v1@${pushed['v2']!.digest}`, /signed with sha256:[0-9a-f]{64}, not sha256:/],
      ] as const) {
        const v = await verify(image);
        assert.equal(v.allowed, false, image);
        assert.match(v.reasons.join(' '), reason, image);
      }
      const byDigest = await verify(`${app}@${pushed['v1']!.digest}`);
      assert.equal(byDigest.allowed, true, byDigest.reasons.join('; '));
    });

    test('a repository signed with the notary CLI: its targets are trusted, a signer policy refuses them', async () => {
      gate.setPolicy(policyFor(`  - images: ["${notaryRepo}"]\n    trust: server`));
      const v = await verify(`${notaryRepo}:v1`);
      assert.equal(v.allowed, true, v.reasons.join('; '));
      assert.equal(v.digest, pushed['n1']!.digest);
      assert.deepEqual(v.signers, ['targets']);
      gate.setPolicy(policyFor(`  - images: ["${notaryRepo}"]\n    trust: server\n    signers: [alice]`));
      assert.equal((await verify(`${notaryRepo}:v1`)).allowed, false);
      gate.setPolicy(policyFor(`  - images: ["${notaryRepo}"]\n    trust: server\n    signers: [targets]`));
      assert.equal((await verify(`${notaryRepo}:v1`)).allowed, true);
    });
  });
}
