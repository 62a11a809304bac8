/**
 * The deploy gate's HTTP server given hostile requests: bodies that are not JSON or not an
 * AdmissionReview, reviews with fields missing or of the wrong type, unknown kinds, images that
 * are not strings, too many containers, huge strings and bodies, deep nesting, wrong methods and
 * paths. Each must be a 4xx or a deny (allowed: false, with a reason), never a 5xx and never
 * allowed, and the gate must go on answering good requests. Also: concurrent misses share one
 * trust fetch, and many images against a trust server that never answers still get an answer
 * within the policy's budget.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_BODY_BYTES, startGateServer, type RunningGate } from '../../src/gate/gate-server.js';
import { loadPolicy } from '../../src/gate/policy.js';
import { createRepository, type TestRepository } from '../support/client.js';
import { admissionReview, captureLog, gateRequest, objectOf, writePolicy, type GateAnswer } from '../support/gate.js';
import { rawRequest } from '../support/hostile.js';
import { startTestServer, type TestServer } from '../support/server.js';

const GUN = 'registry.example.com/hostile/app';
const DIGEST = 'c'.repeat(64);
const ROUTES = ['/mutate', '/validate'] as const;

describe('signet gate: hostile requests', { timeout: 120_000 }, () => {
  let server: TestServer;
  let repository: TestRepository;
  let dir: string;
  let gate: RunningGate;
  let hanging: net.Server;
  const sockets = new Set<net.Socket>();
  const gates: RunningGate[] = [];

  const good = () => admissionReview('Pod', objectOf('Pod', { containers: [`${GUN}:v1`] }));

  /** The gate still decides a good review (and the verify API still answers). */
  const stillServing = async () => {
    for (const route of ROUTES) {
      const res = await gateRequest(gate.url, 'POST', route, good());
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.response.allowed, true, res.text);
    }
    const v = await gateRequest(gate.url, 'POST', '/v1/verify', { image: `${GUN}:v1` });
    assert.equal(v.json.allowed, true, v.text);
  };

  /** A 4xx, or a deny with a reason (uid echoed when there was one); never a 5xx, never allowed. */
  const refused = (res: GateAnswer, what: string, reason?: RegExp) => {
    assert.ok(res.status < 500, `${what}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
    assert.ok(Buffer.byteLength(res.text) <= 16 * 1024, `${what}: a bounded answer, got ${Buffer.byteLength(res.text)} bytes`);
    if (res.status >= 400) {
      assert.equal(typeof res.json?.error, 'string', `${what}: an error message: ${res.text.slice(0, 300)}`);
      if (reason) assert.match(res.json.error, reason, what);
      return;
    }
    assert.equal(res.status, 200, what);
    const response = res.json?.response ?? res.json;
    assert.equal(response.allowed, false, `${what}: must not be allowed: ${res.text.slice(0, 300)}`);
    assert.equal(response.patch, undefined, `${what}: no patch`);
    const message: unknown = response.status?.message ?? response.reasons?.join('; ');
    assert.equal(typeof message, 'string', `${what}: a reason: ${res.text.slice(0, 300)}`);
    assert.ok((message as string).length > 0, what);
    if (reason) assert.match(message as string, reason, what);
    assert.doesNotMatch(
      message as string,
      /is not iterable|Cannot read properties|is not a function/,
      `${what}: a reason, not an internal error: ${message as string}`,
    );
  };

  const both = async (body: unknown, what: string, reason?: RegExp) => {
    for (const route of ROUTES) refused(await gateRequest(gate.url, 'POST', route, body), `${route} ${what}`, reason);
    await stillServing();
  };

  before(async () => {
    server = await startTestServer();
    repository = await createRepository(server.url, GUN, {
      targets: { v1: { hashes: { sha256: Buffer.from(DIGEST, 'hex').toString('base64') }, length: 1234 } },
    });
    dir = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-hostile-'));
    writeFileSync(path.join(dir, 'root.pem'), Buffer.from(repository.rootKey.publicB64, 'base64'));
    hanging = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const file = writePolicy(dir, {
      version: 1,
      trust: {
        signet: { notary: server.url, rootKeys: ['root.pem'] },
        hanging: { notary: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`, rootKeys: ['root.pem'] },
      },
      rules: [
        { images: ['registry.example.com/hostile/**'], trust: 'signet', pinDigest: true },
        { images: ['registry.example.com/slow/**'], trust: 'hanging' },
        { images: ['**'], action: 'deny' },
      ],
      budgetMs: 500,
    });
    gate = await startGateServer(loadPolicy(file), { host: '127.0.0.1', port: 0, logger: captureLog('warn').logger });
  });

  after(async () => {
    await Promise.all([gate, ...gates].filter(Boolean).map((g) => g.close()));
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (hanging ? hanging.close(() => r()) : r()));
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('bodies that are not JSON, or JSON that is not an object: 400', async () => {
    for (const body of [
      '{"apiVersion": "admission.k8s.io/v1", "kind": ',
      '',
      'not json at all',
      '\u0000\u0001',
      '"AdmissionReview"',
      '42',
      'null',
      'true',
      '[]',
      '[{}]',
    ]) {
      for (const route of [...ROUTES, '/v1/verify']) {
        const res = await gateRequest(gate.url, 'POST', route, body);
        assert.equal(res.status, 400, `${route} ${JSON.stringify(body)}: ${res.text}`);
        refused(res, `${route} ${JSON.stringify(body)}`);
      }
    }
    await stillServing();
  });

  test('reviews that are not AdmissionReview v1, or lack request, uid, kind or object', async () => {
    const review = good();
    const without = (field: string) => {
      const r = structuredClone(review);
      delete r.request[field];
      return r;
    };
    await both({ ...review, apiVersion: 'admission.k8s.io/v1beta1' }, 'v1beta1');
    await both({ ...review, apiVersion: 'v1' }, 'apiVersion v1');
    await both({ ...review, kind: 'AdmissionReviewList' }, 'wrong kind', /kind must be AdmissionReview/);
    await both({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'no request');
    await both({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: 'yes' }, 'request a string');
    await both(without('uid'), 'no uid');
    await both({ ...review, request: { ...review.request, uid: '' } }, 'empty uid');
    await both({ ...review, request: { ...review.request, uid: 'u'.repeat(10_000) } }, 'a 10,000 character uid');
    await both(without('kind'), 'no kind', /request\.kind/);
    await both({ ...review, request: { ...review.request, kind: 'Pod' } }, 'kind a string', /request\.kind/);
    await both(without('operation'), 'no operation', /request\.operation/);
    await both({ ...review, request: { ...review.request, operation: 'PATCH' } }, 'unknown operation', /request\.operation/);
    await both(without('object'), 'no object', /pod spec is needed/);
    await both({ ...review, request: { ...review.request, object: null } }, 'object null', /pod spec is needed/);
    await both({ ...review, request: { ...review.request, object: { ...review.request.object, spec: 'x' } } }, 'spec a string', /pod spec is needed/);
    // A deny the API server can show carries the uid.
    const res = await gateRequest(gate.url, 'POST', '/validate', without('object'));
    assert.equal(res.json.response.uid, review.request.uid);
  });

  test('objects of kinds the gate does not check are denied, inherited property names too', async () => {
    for (const kind of ['Service', 'ConfigMap', 'constructor', '__proto__', 'toString', 'hasOwnProperty', '']) {
      const review = good();
      review.request.kind = { group: '', version: 'v1', kind };
      await both(review, `kind ${JSON.stringify(kind)}`, kind ? /not checked by this gate/ : undefined);
    }
  });

  test('images that are not strings, and containers that are not objects', async () => {
    for (const image of [42, null, true, { name: 'x' }, [`${GUN}:v1`], '']) {
      const review = good();
      review.request.object.spec.containers[0].image = image;
      await both(review, `image ${JSON.stringify(image)}`);
    }
    for (const containers of ['app', 7, { 0: { image: `${GUN}:v1` } }]) {
      const review = good();
      review.request.object.spec.containers = containers;
      await both(review, `containers ${JSON.stringify(containers)}`, /must be a list/);
    }
    for (const item of ['app', 7, null, []]) {
      const review = good();
      review.request.object.spec.initContainers = [item];
      await both(review, `initContainer ${JSON.stringify(item)}`);
    }
    // Malformed references.
    for (const image of ['UPPER/Case:v1', `${GUN}:bad tag`, `${GUN}@sha256:1234`, ':::', `${GUN}:v1\n`]) {
      const review = good();
      review.request.object.spec.containers.push({ name: 'x', image });
      await both(review, `image ${JSON.stringify(image)}`);
    }
  });

  test('10,000 containers, a 5 MB image and a body over 8 MiB', async () => {
    const many = good();
    many.request.object.spec.containers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, image: `${GUN}:v1` }));
    await both(many, '10,000 containers', /more than 1024 containers/);
    const distinct = good();
    distinct.request.object.spec.containers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, image: `${GUN}:t${i}` }));
    await both(distinct, '10,000 distinct images', /more than 1024 containers/);

    const huge = good();
    huge.request.object.spec.containers.push({ name: 'huge', image: `${GUN}:${'a'.repeat(5 * 1024 * 1024)}` });
    await both(huge, 'a 5 MB image', /longer than 4096 characters/);
    const hugeVerify = await gateRequest(gate.url, 'POST', '/v1/verify', { image: 'a'.repeat(5 * 1024 * 1024) });
    refused(hugeVerify, 'verify a 5 MB image', /longer than 4096 characters/);

    const over = good();
    over.request.object.metadata.annotations.padding = 'x'.repeat(MAX_BODY_BYTES);
    for (const route of [...ROUTES, '/v1/verify']) {
      const declared = await gateRequest(gate.url, 'POST', route, over);
      assert.equal(declared.status, 413, `${route}: ${declared.text.slice(0, 200)}`);
      refused(declared, `${route} over 8 MiB`);
      // The same without Content-Length (chunked): the gate stops reading and says so.
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      const chunked = await rawRequest(gate.url, {
        method: 'POST',
        path: route,
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        stream: (i) => (i === 0 ? Buffer.from('{"a":"') : i < 40 ? chunk : null),
      });
      assert.equal(chunked.status, 413, `${route} chunked: ${chunked.text.slice(0, 200)}`);
    }
    await stillServing();
  });

  test('deeply nested JSON', async () => {
    const depth = 1_000_000;
    const nested = '['.repeat(depth) + ']'.repeat(depth);
    for (const route of [...ROUTES, '/v1/verify']) {
      refused(await gateRequest(gate.url, 'POST', route, nested), `${route} nested arrays`);
      refused(await gateRequest(gate.url, 'POST', route, '{"a":'.repeat(depth / 10) + '1' + '}'.repeat(depth / 10)), `${route} nested objects`);
    }
    const review = JSON.stringify(good());
    const deepObject = review.replace(/"object":\{/, `"object":{"deep":${'['.repeat(depth)}${']'.repeat(depth)},`);
    const deepSpec = review.replace(/"containers":\[/, `"deep":${'{"x":'.repeat(depth / 10)}1${'}'.repeat(depth / 10)},"containers":[`);
    for (const [what, body] of [
      ['deep in the object', deepObject],
      ['deep in the pod spec', deepSpec],
    ] as const) {
      for (const route of ROUTES) {
        const res = await gateRequest(gate.url, 'POST', route, body);
        assert.equal(res.status, 200, `${route} ${what}: ${res.text.slice(0, 300)}`);
        // The images are fine: deep nesting elsewhere is no reason to fail.
        assert.equal(res.json.response.allowed, true, `${route} ${what}: ${res.text.slice(0, 300)}`);
      }
    }
    await stillServing();
  });

  test('wrong methods and unknown paths: 405 and 404', async () => {
    for (const route of [...ROUTES, '/v1/verify']) {
      for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
        const res = await gateRequest(gate.url, method, route, method === 'GET' ? undefined : good());
        assert.equal(res.status, 405, `${method} ${route}`);
        refused(res, `${method} ${route}`);
      }
    }
    for (const [method, route] of [
      ['POST', '/'],
      ['POST', '/mutate/'],
      ['POST', '/Mutate'],
      ['POST', '/v1/verify/../mutate/x'],
      ['GET', '/metrics/x'],
      ['POST', '/healthz'],
      ['GET', '/%2e%2e/etc/passwd'],
      ['GET', `/${'x'.repeat(4000)}`],
    ] as const) {
      const res = await gateRequest(gate.url, method, route, method === 'POST' ? good() : undefined);
      assert.ok(res.status === 404 || res.status === 405, `${method} ${route.slice(0, 40)}: ${res.status}`);
      refused(res, `${method} ${route.slice(0, 40)}`);
    }
    // A query string does not change the route.
    const withQuery = await gateRequest(gate.url, 'POST', '/validate?timeout=10s', good());
    assert.equal(withQuery.json.response.allowed, true);
    await stillServing();
  });

  test('verify requests that are not {"image": string}', async () => {
    for (const body of [{}, { image: 42 }, { image: null }, { image: '' }, { image: [`${GUN}:v1`] }, { images: [`${GUN}:v1`] }]) {
      const res = await gateRequest(gate.url, 'POST', '/v1/verify', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      refused(res, `verify ${JSON.stringify(body)}`, /image: a string is needed/);
    }
    for (const image of ['UPPER/Case', `${GUN}:v1 `, `${GUN}:v2`]) refused(await gateRequest(gate.url, 'POST', '/v1/verify', { image }), `verify ${image}`);
    await stillServing();
  });

  test('50 identical requests at once for an uncached repository make one trust fetch', async () => {
    const gun = 'registry.example.com/hostile/concurrent';
    const repo = await createRepository(server.url, gun, { targets: { v1: { hashes: { sha256: Buffer.from(DIGEST, 'hex').toString('base64') }, length: 1 } } });
    writeFileSync(path.join(dir, 'concurrent-root.pem'), Buffer.from(repo.rootKey.publicB64, 'base64'));
    const file = writePolicy(
      dir,
      {
        version: 1,
        trust: { signet: { notary: server.url, rootKeys: ['concurrent-root.pem'] } },
        rules: [{ images: [gun], trust: 'signet', pinDigest: true }],
      },
      'concurrent.yaml',
    );
    const g = await startGateServer(loadPolicy(file), { host: '127.0.0.1', port: 0, logger: captureLog('warn').logger });
    gates.push(g);
    const body = admissionReview('Deployment', objectOf('Deployment', { containers: [`${gun}:v1`] }));
    const answers = await Promise.all(Array.from({ length: 50 }, () => gateRequest(g.url, 'POST', '/mutate', body)));
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.json.response.allowed, true, a.text);
      assert.ok(a.json.response.patch);
    }
    assert.equal(g.trust.stats.fetches, 1, JSON.stringify(g.trust.stats));
  });

  test('many images against a trust server that never answers: one answer within the budget for the whole request', async () => {
    const review = good();
    review.request.object.spec.containers = Array.from({ length: 100 }, (_, i) => ({ name: `c${i}`, image: `registry.example.com/slow/app${i}:v1` }));
    const started = Date.now();
    const res = await gateRequest(gate.url, 'POST', '/validate', review);
    const ms = Date.now() - started;
    assert.ok(ms < 500 + 1_500, `answered in ${ms} ms, the budget is 500 ms`);
    refused(res, 'slow source', /did not answer/);
    await stillServing();
  });
});
