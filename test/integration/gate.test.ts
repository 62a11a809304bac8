/**
 * The deploy gate end to end: trust data published with the real `signet trust` commands
 * (signers alice and bob, docker's convention: targets/NAME and targets/releases) into a real
 * Signet server, images in a real registry, the repositories' root keys pinned in the policy,
 * and the gate's real HTTP(S) server answering AdmissionReviews written as the Kubernetes API
 * server sends them, for every kind of object it checks. Also: a trust server that is down or
 * never answers, a hostile trust server (expired timestamp, rolled-back data), the verify API,
 * health, readiness, metrics and the decision log.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startGateServer, type RunningGate } from '../../src/gate/gate-server.js';
import { loadPolicy } from '../../src/gate/policy.js';
import { runSignet } from '../support/cli.js';
import {
  ALL_KINDS,
  POD_SPEC_POINTER,
  admissionReview,
  captureLog,
  eventually,
  gateRequest,
  objectOf,
  patchOf,
  writePolicy,
  type CapturedLog,
  type Images,
} from '../support/gate.js';
import { startRegistry, type PushedImage, type TestRegistry } from '../support/registry.js';
import { StaticNotaryServer as HostileServer } from '../support/static-notary.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeTestTls, type TestTls } from '../support/tls.js';
import { certKey, ecdsaKey, inDays, rootDoc, signFile, snapshotDoc, targetsDoc, type TestKey } from '../support/tuf-kit.js';

const PASS = { DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'gate-root-pass', DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'gate-repo-pass' };
const MARGIN_MS = 1_500;

interface HostileKeys {
  root: TestKey;
  targets: TestKey;
  snapshot: TestKey;
  timestamp: TestKey;
}

const entryOf = (hex: string) => ({ hashes: { sha256: Buffer.from(hex, 'hex').toString('base64') }, length: 1234 });

/** One repository state (no delegations: docker's rule falls back to targets). */
function hostileState(k: HostileKeys, opts: { version: number; tags: Record<string, string>; timestampExpires?: string }) {
  const root = signFile(rootDoc({ root: [k.root], targets: [k.targets], snapshot: [k.snapshot], timestamp: [k.timestamp] }), [k.root]);
  const targets = signFile(targetsDoc({ version: opts.version, targets: Object.fromEntries(Object.entries(opts.tags).map(([t, hex]) => [t, entryOf(hex)])) }), [
    k.targets,
  ]);
  const snapshot = signFile(snapshotDoc({ version: opts.version, files: { root, targets } }), [k.snapshot]);
  const timestamp = signFile(
    {
      _type: 'Timestamp',
      expires: opts.timestampExpires ?? inDays(14),
      meta: { snapshot: { hashes: { sha256: createHash('sha256').update(snapshot).digest('base64') }, length: snapshot.length } },
      version: opts.version,
    },
    [k.timestamp],
  );
  return { root, targets, snapshot, timestamp };
}

/** The root key of a repository as the trust server gives it: the certificate (PEM) of 1.root.json. */
async function rootCertificateOf(serverUrl: string, gun: string): Promise<string> {
  const res = await gateRequest(serverUrl, 'GET', `/v2/${gun}/_trust/tuf/1.root.json`);
  assert.equal(res.status, 200, `1.root.json of ${gun}: ${res.text}`);
  const root = res.json as { signed: { keys: Record<string, { keytype: string; keyval: { public: string } }>; roles: { root: { keyids: string[] } } } };
  const key = root.signed.keys[root.signed.roles.root.keyids[0]!]!;
  assert.match(key.keytype, /-x509$/, 'signet trust makes certificate root keys, as notary does');
  return Buffer.from(key.keyval.public, 'base64').toString('utf8');
}

describe('signet gate: admission decisions against trust data published with signet trust', { timeout: 150_000 }, () => {
  let server: TestServer;
  let registry: TestRegistry;
  let hostile: HostileServer;
  let tls: TestTls;
  let ca: string;
  let home: string;
  let dir: string;
  let log: CapturedLog;
  let gate: RunningGate;
  const gates: RunningGate[] = [];
  const sockets = new Set<net.Socket>();
  let hanging: net.Server;
  let hangingUrl: string;
  let closedUrl: string;
  const images: Record<string, PushedImage> = {};
  // Notary's root certificates name their repository: one root key per repository.
  const hostileKeys = (gun: string): HostileKeys => ({ root: certKey({ commonName: gun }), targets: ecdsaKey(), snapshot: ecdsaKey(), timestamp: ecdsaKey() });
  const EXPIRED = 'registry.example.com/attacks/expired';
  const ROLLBACK = 'registry.example.com/attacks/rollback';
  const hostileRepos = { [EXPIRED]: hostileKeys(EXPIRED), [ROLLBACK]: hostileKeys(ROLLBACK) };

  const env = () => ({ DOCKER_CONFIG: home, DOCKER_CONTENT_TRUST_SERVER: server.url, CI: 'true', ...PASS });
  const signet = async (...args: string[]) => {
    const r = await runSignet(args, env());
    assert.equal(r.code, 0, `signet ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    return r;
  };
  const repo = (name: string) => `${registry.host}/gate/${name}`;
  const digestOf = (name: string) => images[name]!.digest;

  /** The trust sources every policy of this suite may use. */
  const trust = () => ({
    signet: { notary: server.url, rootKeys: ['roots.pem'] },
    'signet-pub': { notary: server.url, rootKeys: ['roots-pub.pem'] },
    'signet-other-key': { notary: server.url, rootKeys: ['other-root.pem'] },
    down: { notary: closedUrl, rootKeys: ['roots.pem'] },
    hanging: { notary: hangingUrl, rootKeys: ['roots.pem'] },
    hostile: { notary: hostile.url, rootKeys: ['hostile-root.pem'] },
  });
  /** A gate (plain http) for `rules`, on its own trust cache; closed after the suite. */
  const startGate = async (rules: object[], extra: Record<string, unknown> = {}, logTo: CapturedLog = captureLog()) => {
    const file = writePolicy(dir, { version: 1, trust: trust(), rules, ...extra }, `policy-${gates.length}.yaml`);
    const g = await startGateServer(loadPolicy(file), { host: '127.0.0.1', port: 0, logger: logTo.logger });
    gates.push(g);
    return g;
  };
  const verify = async (g: RunningGate, image: string) => {
    const res = await gateRequest(g.url, 'POST', '/v1/verify', { image });
    assert.equal(res.status, 200, res.text);
    return res.json as { allowed: boolean; image: string; digest: string | null; rule: string | null; mode: string; signers: string[]; reasons: string[] };
  };
  /** POST a review to the main (TLS) gate. */
  const review = async (route: '/mutate' | '/validate', body: object, g: RunningGate = gate) => {
    const res = await gateRequest(g.url, 'POST', route, body, g === gate ? { ca } : {});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.apiVersion, 'admission.k8s.io/v1');
    assert.equal(res.json.kind, 'AdmissionReview');
    assert.equal(res.json.response.uid, (body as { request: { uid: string } }).request.uid, 'the uid is echoed');
    return res.json.response as {
      uid: string;
      allowed: boolean;
      status?: { code: number; message: string };
      warnings?: string[];
      patch?: string;
      patchType?: string;
    };
  };

  before(async () => {
    [server, registry] = await Promise.all([startTestServer(), startRegistry()]);
    hostile = new HostileServer();
    await hostile.start();
    tls = makeTestTls();
    ca = readFileSync(tls.caCert, 'utf8');
    home = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-home-'));
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-policy-'));
    // A trust server that accepts connections and never answers, and a port nobody listens on.
    hanging = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((r) => probe.close(() => r()));

    for (const [name, repository, tag] of [
      ['app:v1', 'gate/app', 'v1'],
      ['app:v2', 'gate/app', 'v2'],
      ['app:unsigned', 'gate/app', 'unsigned'],
      ['dup:v1', 'gate/dup', 'v1'],
      ['rev:v1', 'gate/rev', 'v1'],
      ['sidecar:v1', 'gate/sidecar', 'v1'],
    ] as const) {
      images[name] = await registry.pushImage(repository, tag);
    }
    await signet('trust', 'key', 'generate', 'alice', '--dir', home);
    await signet('trust', 'key', 'generate', 'bob', '--dir', home);
    const alice = path.join(home, 'alice.pub');
    const bob = path.join(home, 'bob.pub');
    // gate/app: alice and bob; v1 signed by both, v2 by alice only, `unsigned` pushed and never signed.
    await signet('trust', 'signer', 'add', '--key', alice, 'alice', repo('app'));
    await signet('trust', 'signer', 'add', '--key', bob, 'bob', repo('app'));
    await signet('trust', 'sign', `${repo('app')}:v1`);
    await signet('trust', 'sign', `${repo('app')}:v2`, '--role', 'targets/alice', '--role', 'targets/releases');
    // gate/dup: two signers, alice and carol, with one and the same key.
    await signet('trust', 'signer', 'add', '--key', alice, 'alice', repo('dup'));
    await signet('trust', 'signer', 'add', '--key', alice, 'carol', repo('dup'));
    await signet('trust', 'sign', `${repo('dup')}:v1`);
    // gate/rev: signed, revoked in a test.
    await signet('trust', 'signer', 'add', '--key', alice, 'alice', repo('rev'));
    await signet('trust', 'sign', `${repo('rev')}:v1`);
    await signet('trust', 'signer', 'add', '--key', alice, 'alice', repo('sidecar'));
    await signet('trust', 'sign', `${repo('sidecar')}:v1`);
    // docker.io/library/nginx, as `nginx` names it: signed with a digest given by hand.
    images['nginx:latest'] = { ...images['sidecar:v1']!, repository: 'library/nginx', tag: 'latest' };
    await signet('trust', 'signer', 'add', '--key', alice, 'alice', 'docker.io/library/nginx');
    await signet('trust', 'sign', 'docker.io/library/nginx:latest', '--digest', digestOf('nginx:latest'), '--size', String(images['nginx:latest'].size));

    // Pin the root keys: as certificates, and as bare public keys (matched by key material).
    const certs: string[] = [];
    for (const gun of [repo('app'), repo('dup'), repo('rev'), repo('sidecar'), 'docker.io/library/nginx']) certs.push(await rootCertificateOf(server.url, gun));
    writeFileSync(path.join(dir, 'roots.pem'), certs.join('\n'));
    writeFileSync(
      path.join(dir, 'roots-pub.pem'),
      certs.map((pem) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'pem' }) as string).join('\n'),
    );
    writeFileSync(path.join(dir, 'other-root.pem'), Buffer.from(certKey({ commonName: 'someone else' }).publicB64, 'base64'));
    writeFileSync(
      path.join(dir, 'hostile-root.pem'),
      Object.values(hostileRepos)
        .map((k) => Buffer.from(k.root.publicB64, 'base64').toString('utf8'))
        .join('\n'),
    );

    // The main gate: TLS with the test CA, docker's rule with digest pinning.
    log = captureLog();
    const file = writePolicy(dir, {
      version: 1,
      trust: trust(),
      rules: [
        { images: [`${registry.host}/gate/**`], trust: 'signet', pinDigest: true },
        { images: [`${registry.host}/gate/dup`], trust: 'signet', signers: ['alice', 'carol'], threshold: 2 },
        { images: ['docker.io/library/*'], trust: 'signet', pinDigest: true },
        { images: ['registry.k8s.io/pause'], action: 'allow' },
        { images: ['**'], action: 'deny' },
      ],
      namespaces: { exclude: ['kube-system'] },
    });
    gate = await startGateServer(loadPolicy(file), {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8') },
      logger: log.logger,
    });
  });

  after(async () => {
    await Promise.all([gate, ...gates].filter(Boolean).map((g) => g.close()));
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (hanging ? hanging.close(() => r()) : r()));
    await hostile?.stop();
    await server?.close();
    await registry?.stop();
    for (const d of [home, dir, tls?.dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test('every kind of object, signed images: /mutate pins each image to its digest, /validate admits without a patch', async () => {
    const app = `${repo('app')}:v1`;
    const sidecar = `${repo('sidecar')}:v1`;
    const pinned = { app: `${app}@${digestOf('app:v1')}`, sidecar: `${sidecar}@${digestOf('sidecar:v1')}` };
    const withImages: Images = { containers: [app, sidecar], initContainers: [sidecar] };
    for (const kind of ALL_KINDS) {
      const object = objectOf(kind, kind === 'Pod' ? { ...withImages, ephemeralContainers: [app] } : withImages);
      const mutated = await review('/mutate', admissionReview(kind, object));
      assert.equal(mutated.allowed, true, `${kind}: ${JSON.stringify(mutated.status)}`);
      assert.equal(mutated.patchType, 'JSONPatch', kind);
      const spec = POD_SPEC_POINTER[kind];
      const expected = [
        { op: 'replace', path: `${spec}/containers/0/image`, value: pinned.app },
        { op: 'replace', path: `${spec}/containers/1/image`, value: pinned.sidecar },
        { op: 'replace', path: `${spec}/initContainers/0/image`, value: pinned.sidecar },
        ...(kind === 'Pod' ? [{ op: 'replace', path: `${spec}/ephemeralContainers/0/image`, value: pinned.app }] : []),
      ];
      assert.deepEqual(patchOf(mutated), expected, kind);
      const validated = await review('/validate', admissionReview(kind, object));
      assert.equal(validated.allowed, true, kind);
      assert.equal(validated.patch, undefined, `${kind}: the validating webhook never patches`);
      assert.equal(validated.patchType, undefined, kind);
    }
  });

  test('pods/ephemeralcontainers: the subresource update of a running pod is checked, and the debug container pinned', async () => {
    const running = objectOf('Pod', { containers: [`${repo('app')}:v1@${digestOf('app:v1')}`] }, 'shop-7c9d8');
    const updated = objectOf('Pod', { containers: [`${repo('app')}:v1@${digestOf('app:v1')}`], ephemeralContainers: [`${repo('sidecar')}:v1`] }, 'shop-7c9d8');
    const body = admissionReview('Pod', updated, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: running, name: 'shop-7c9d8' });
    assert.equal(body.request.subResource, 'ephemeralcontainers');
    const res = await review('/mutate', body);
    assert.equal(res.allowed, true, JSON.stringify(res.status));
    assert.deepEqual(patchOf(res), [{ op: 'replace', path: '/spec/ephemeralContainers/0/image', value: `${repo('sidecar')}:v1@${digestOf('sidecar:v1')}` }]);
    // An unsigned debug image is refused.
    const bad = objectOf('Pod', { containers: [`${repo('app')}:v1@${digestOf('app:v1')}`], ephemeralContainers: [`${repo('app')}:unsigned`] }, 'shop-7c9d8');
    const denied = await review(
      '/validate',
      admissionReview('Pod', bad, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: running, name: 'shop-7c9d8' }),
    );
    assert.equal(denied.allowed, false);
    assert.match(denied.status!.message, /gate\/app:unsigned: no signed digest/);
  });

  test('images that already carry the signed digest are admitted without a patch', async () => {
    const d = digestOf('app:v1');
    for (const image of [`${repo('app')}:v1@${d}`, `${repo('app')}@${d}`]) {
      const res = await review('/mutate', admissionReview('Deployment', objectOf('Deployment', { containers: [image] })));
      assert.equal(res.allowed, true, `${image}: ${JSON.stringify(res.status)}`);
      assert.equal(res.patch, undefined, image);
      assert.equal(res.patchType, undefined, image);
    }
  });

  test('denials: unsigned tag, digest not signed, tag@digest that disagree, no trust data, an image no rule allows', async () => {
    const cases: [string, RegExp][] = [
      [`${repo('app')}:unsigned`, /no signed digest for .*gate\/app:unsigned/],
      [`${repo('app')}@sha256:${'0'.repeat(64)}`, /no signed digest for .*gate\/app@sha256:0{64}/],
      [`${repo('app')}:v1@${digestOf('app:v2')}`, new RegExp(`the tag is signed with ${digestOf('app:v1')}, not ${digestOf('app:v2')}`)],
      [`${repo('nothing-here')}:v1`, /trust data of .*gate\/nothing-here from signet/],
      ['quay.io/someone/tool:1.0', /the rule \*\* denies quay\.io\/someone\/tool/],
    ];
    for (const [image, reason] of cases) {
      for (const route of ['/mutate', '/validate'] as const) {
        const res = await review(route, admissionReview('StatefulSet', objectOf('StatefulSet', { containers: [`${repo('app')}:v1`, image] })));
        assert.equal(res.allowed, false, `${route} ${image}`);
        assert.equal(res.status?.code, 403, image);
        assert.match(res.status!.message, reason, image);
        assert.equal(res.patch, undefined, 'no patch with a denial');
      }
      const v = await gateRequest(gate.url, 'POST', '/v1/verify', { image }, { ca });
      assert.equal(v.json.allowed, false, image);
    }
  });

  test('the signers of a digest are counted by key material: two delegations with one key are one signer', async () => {
    const res = await review('/validate', admissionReview('DaemonSet', objectOf('DaemonSet', { containers: [`${repo('dup')}:v1`] })));
    assert.equal(res.allowed, false);
    assert.match(res.status!.message, /signed by 1 of alice, carol .*2 needed; missing carol/);
  });

  test('signer policies: the wrong signer, and a threshold of two with only alice', async () => {
    const onlyBob = await startGate([{ images: [`${registry.host}/gate/app`], trust: 'signet', signers: ['bob'] }]);
    assert.deepEqual((await verify(onlyBob, `${repo('app')}:v1`)).signers, ['bob']);
    const wrong = await verify(onlyBob, `${repo('app')}:v2`);
    assert.equal(wrong.allowed, false);
    assert.match(wrong.reasons.join(), /no signed digest for .*gate\/app:v2 by bob/);

    const both = await startGate([{ images: [`${registry.host}/gate/app`], trust: 'signet', signers: ['alice', 'bob'], threshold: 2 }]);
    const v1 = await verify(both, `${repo('app')}:v1`);
    assert.equal(v1.allowed, true, v1.reasons.join());
    assert.deepEqual(v1.signers.sort(), ['alice', 'bob']);
    assert.equal(v1.digest, digestOf('app:v1'));
    const v2 = await verify(both, `${repo('app')}:v2`);
    assert.equal(v2.allowed, false);
    assert.match(v2.reasons.join(), /signed by 1 of alice, bob \(alice\), 2 needed; missing bob/);
    // docker's rule (no signers): targets/releases decides, so alice's v2 is admitted.
    const docker = await review('/validate', admissionReview('Pod', objectOf('Pod', { containers: [`${repo('app')}:v2`] })));
    assert.equal(docker.allowed, true, JSON.stringify(docker.status));
  });

  test('root keys are pinned by key material: a certificate and its bare public key both work, another key does not', async () => {
    const pub = await startGate([{ images: [`${registry.host}/gate/**`], trust: 'signet-pub' }]);
    const v = await verify(pub, `${repo('app')}:v1`);
    assert.equal(v.allowed, true, v.reasons.join());
    assert.equal(v.digest, digestOf('app:v1'));
    const other = await startGate([{ images: [`${registry.host}/gate/**`], trust: 'signet-other-key' }]);
    const refused = await verify(other, `${repo('app')}:v1`);
    assert.equal(refused.allowed, false);
    assert.match(refused.reasons.join(), /PINNING/);
  });

  test('a bare name is normalised as the runtime does (docker.io/library/nginx:latest) and matched by the rules', async () => {
    const res = await review('/mutate', admissionReview('Pod', objectOf('Pod', { containers: ['nginx'] })));
    assert.equal(res.allowed, true, JSON.stringify(res.status));
    assert.deepEqual(patchOf(res), [{ op: 'replace', path: '/spec/containers/0/image', value: `docker.io/library/nginx:latest@${digestOf('nginx:latest')}` }]);
    const v = await verify(await startGate([{ images: ['docker.io/library/nginx'], trust: 'signet' }]), 'nginx');
    assert.equal(v.rule, 'docker.io/library/nginx');
    assert.equal(v.digest, digestOf('nginx:latest'));
    assert.deepEqual(v.signers.sort(), ['releases']);
    // Another official image is not signed there.
    const busybox = await review('/validate', admissionReview('Pod', objectOf('Pod', { containers: ['busybox:1.36'] })));
    assert.equal(busybox.allowed, false);
    assert.match(busybox.status!.message, /docker\.io\/library\/busybox/);
  });

  test('an excluded namespace, DELETE and CONNECT are admitted without a look at the images', async () => {
    const unsigned = objectOf('Pod', { containers: [`${repo('app')}:unsigned`] }, 'kube-proxy', 'kube-system');
    const excluded = await review(
      '/mutate',
      admissionReview('Pod', unsigned, { namespace: 'kube-system', username: 'system:serviceaccount:kube-system:daemon-set-controller' }),
    );
    assert.equal(excluded.allowed, true);
    assert.equal(excluded.patch, undefined);
    const deleted = await review(
      '/validate',
      admissionReview('Deployment', objectOf('Deployment', { containers: [`${repo('app')}:unsigned`] }), { operation: 'DELETE' }),
    );
    assert.equal(deleted.allowed, true);
    const exec = { apiVersion: 'v1', kind: 'PodExecOptions', stdin: true, stdout: true, tty: true, container: 'app', command: ['sh'] };
    const connected = await review('/validate', admissionReview('Pod', exec, { operation: 'CONNECT', subResource: 'exec', name: 'shop-7c9d8' }));
    assert.equal(connected.allowed, true);
    // The same object elsewhere is denied.
    const elsewhere = await review('/validate', admissionReview('Pod', objectOf('Pod', { containers: [`${repo('app')}:unsigned`] })));
    assert.equal(elsewhere.allowed, false);
  });

  test('dry runs are decided like any request', async () => {
    const res = await review('/validate', admissionReview('Job', objectOf('Job', { containers: [`${repo('app')}:unsigned`] }), { dryRun: true }));
    assert.equal(res.allowed, false);
  });

  test('warn mode admits with warnings and keeps the reasons', async () => {
    const capture = captureLog();
    const warn = await startGate([{ images: [`${registry.host}/gate/app`], trust: 'signet', signers: ['bob'], mode: 'warn' }], {}, capture);
    const body = admissionReview('CronJob', objectOf('CronJob', { containers: [`${repo('app')}:v2`] }));
    const res = await review('/validate', body, warn);
    assert.equal(res.allowed, true);
    assert.equal(res.status, undefined);
    assert.equal(res.warnings?.length, 1);
    assert.match(res.warnings![0]!, /gate\/app:v2: no signed digest .* by bob \(warn mode: not refused for this\)/);
    const v = await verify(warn, `${repo('app')}:v2`);
    assert.equal(v.allowed, true);
    assert.equal(v.mode, 'warn');
    assert.match(v.reasons.join(), /by bob/);
    const line = capture.lines().find((l) => l['msg'] === 'gate decision' && l['uid'] === body.request.uid);
    assert.ok(line, 'one decision line');
    assert.equal(line['allowed'], true);
    assert.equal(line['mode'], 'warn');
    assert.match((line['reasons'] as string[]).join(), /by bob/);
  });

  test('a trust server that is down or never answers: an answer within the budget, denied in enforce, admitted with a warning in warn', async () => {
    const budgetMs = 400;
    for (const source of ['down', 'hanging']) {
      const g = await startGate(
        [
          { images: [`${registry.host}/gate/app`], trust: source },
          { images: [`${registry.host}/gate/sidecar`], trust: source, mode: 'warn' },
        ],
        { budgetMs },
      );
      const enforce = await gateRequest(
        g.url,
        'POST',
        '/validate',
        admissionReview('ReplicaSet', objectOf('ReplicaSet', { containers: [`${repo('app')}:v1`] })),
      );
      assert.ok(enforce.ms < budgetMs + MARGIN_MS, `${source}: answered in ${enforce.ms} ms`);
      assert.equal(enforce.json.response.allowed, false, source);
      assert.match(enforce.json.response.status.message, source === 'down' ? /trust data of .* from down/ : /did not answer .* within the budget of 400 ms/);
      const warn = await gateRequest(
        g.url,
        'POST',
        '/mutate',
        admissionReview('ReplicaSet', objectOf('ReplicaSet', { containers: [`${repo('sidecar')}:v1`] })),
      );
      assert.ok(warn.ms < budgetMs + MARGIN_MS, `${source}: answered in ${warn.ms} ms`);
      assert.equal(warn.json.response.allowed, true, source);
      assert.equal(warn.json.response.patch, undefined);
      assert.match(warn.json.response.warnings.join(), /\(warn mode: not refused for this\)/);
    }
  });

  test('a hostile trust server: an expired timestamp is refused; rolled-back trust data is never used', async () => {
    const capture = captureLog();
    const g = await startGate([{ images: ['registry.example.com/attacks/**'], trust: 'hostile' }], { cache: { refreshSeconds: 1 } }, capture);
    const [old, current] = ['1'.repeat(64), '2'.repeat(64)];
    hostile.serve(EXPIRED, hostileState(hostileRepos[EXPIRED]!, { version: 1, tags: { v1: current }, timestampExpires: inDays(-1) }));
    const expired = await verify(g, `${EXPIRED}:v1`);
    assert.equal(expired.allowed, false);
    assert.match(expired.reasons.join(), /EXPIRED/);

    // Version 2 revoked `old`; the server then serves version 1 again, where `old` is signed.
    const gun = ROLLBACK;
    hostile.serve(gun, hostileState(hostileRepos[gun]!, { version: 2, tags: { v2: current } }));
    assert.equal((await verify(g, `${gun}:v2`)).digest, `sha256:${current}`);
    assert.equal((await verify(g, `${gun}:old`)).allowed, false);
    hostile.serve(gun, hostileState(hostileRepos[gun]!, { version: 1, tags: { old, v2: current } }));
    await new Promise((r) => setTimeout(r, 1_100));
    await verify(g, `${gun}:old`); // past the refresh interval: a background refresh starts
    const failed = await eventually('the refresh refused', () =>
      capture.lines().find((l) => l['msg'] === 'trust data refresh failed; the cached data is used until it expires' && l['gun'] === gun),
    );
    assert.match(failed['error'] as string, /timestamp: version 1 is older than the trusted version 2/);
    const after = await verify(g, `${gun}:old`);
    assert.equal(after.allowed, false, 'the rolled-back data is not used');
    assert.equal((await verify(g, `${gun}:v2`)).allowed, true);
  });

  test('a revoked tag is denied: at once by a fresh gate, and after the refresh interval by a running one', async () => {
    const rules = [{ images: [`${registry.host}/gate/rev`], trust: 'signet' }];
    const running = await startGate(rules, { cache: { refreshSeconds: 1 } });
    assert.equal((await verify(running, `${repo('rev')}:v1`)).allowed, true);
    await signet('trust', 'revoke', `${repo('rev')}:v1`);
    const fresh = await startGate(rules);
    const v = await verify(fresh, `${repo('rev')}:v1`);
    assert.equal(v.allowed, false);
    assert.match(v.reasons.join(), /no signed digest for .*gate\/rev:v1/);
    await eventually('the running gate denies the revoked tag', async () => ((await verify(running, `${repo('rev')}:v1`)).allowed ? undefined : true));
  });

  test('/v1/verify: the decision as JSON', async () => {
    const res = await gateRequest(gate.url, 'POST', '/v1/verify', { image: `${repo('app')}:v1` }, { ca });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(Object.keys(res.json).sort(), ['allowed', 'digest', 'evidence', 'image', 'mode', 'reasons', 'rule', 'signers']);
    assert.deepEqual(
      { ...res.json, signers: [...(res.json.signers as string[])].sort() },
      {
        allowed: true,
        image: `${repo('app')}:v1`,
        digest: digestOf('app:v1'),
        rule: `${registry.host}/gate/**`,
        mode: 'enforce',
        signers: ['releases'],
        evidence: [{ source: 'signet', kind: 'notary', signer: 'releases' }],
        reasons: [],
      },
    );
    const denied = await gateRequest(gate.url, 'POST', '/v1/verify', { image: 'quay.io/x/y:1' }, { ca });
    assert.equal(denied.status, 200);
    assert.deepEqual(denied.json, {
      allowed: false,
      image: 'quay.io/x/y:1',
      digest: null,
      rule: '**',
      mode: 'enforce',
      signers: [],
      evidence: [],
      reasons: ['the rule ** denies quay.io/x/y'],
    });
  });

  test('/healthz, /readyz (503 when a trust source is down) and /metrics', async () => {
    const health = await gateRequest(gate.url, 'GET', '/healthz', undefined, { ca });
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { ok: true });
    const onlyUp = await startGate([{ images: ['**'], trust: 'signet' }], { trust: { signet: trust().signet } });
    const ready = await gateRequest(onlyUp.url, 'GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.json.ok, true);
    const withDown = await startGate([{ images: ['**'], trust: 'down' }], { trust: { down: trust().down } });
    const notReady = await gateRequest(withDown.url, 'GET', '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.json.ok, false);
    assert.deepEqual(
      (notReady.json.sources as { source: string; ok: boolean }[]).map((s) => [s.source, s.ok]),
      [['down', false]],
    );

    const metrics = await gateRequest(gate.url, 'GET', '/metrics', undefined, { ca });
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers['content-type']), /^text\/plain/);
    assert.match(metrics.text, /^signet_gate_decisions_total\{endpoint="mutate",allowed="true"\} [1-9]\d*$/m);
    assert.match(metrics.text, /^signet_gate_decisions_total\{endpoint="validate",allowed="false"\} [1-9]\d*$/m);
    assert.match(metrics.text, /^signet_gate_decision_seconds_bucket\{le="0\.005",endpoint="mutate"\} \d+$/m);
    assert.match(metrics.text, /^signet_gate_decision_seconds_count\{endpoint="validate"\} [1-9]\d*$/m);
    assert.match(metrics.text, /^signet_gate_decision_seconds_sum\{endpoint="verify"\} /m);
  });

  test('each image decision is one structured log line', async () => {
    const body = admissionReview('Deployment', objectOf('Deployment', { containers: [`${repo('app')}:v1`] }, 'checkout', 'payments'));
    await review('/mutate', body);
    const lines = log.lines().filter((l) => l['uid'] === body.request.uid);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const line = lines[0]!;
    assert.equal(line['msg'], 'gate decision');
    assert.equal(line['level'], 'info');
    assert.equal(line['service'], 'signet');
    assert.equal(typeof line['time'], 'string');
    assert.deepEqual(
      {
        namespace: line['namespace'],
        object: line['object'],
        operation: line['operation'],
        image: line['image'],
        digest: line['digest'],
        rule: line['rule'],
        mode: line['mode'],
        allowed: line['allowed'],
        reasons: line['reasons'],
      },
      {
        namespace: 'payments',
        object: 'Deployment/checkout',
        operation: 'CREATE',
        image: `${repo('app')}:v1`,
        digest: digestOf('app:v1'),
        rule: `${registry.host}/gate/**`,
        mode: 'enforce',
        allowed: true,
        reasons: [],
      },
    );
    assert.deepEqual([...(line['signers'] as string[])].sort(), ['releases']);
    assert.equal(typeof line['ms'], 'number');
  });
});
