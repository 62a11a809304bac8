/**
 * `signet gate`'s HTTP(S) server (node:https, no framework: the gate is client-side code and
 * must start fast): the mutating and validating admission webhooks, the verify API for
 * pipelines and people, health, readiness and Prometheus metrics. Every decision is one
 * structured log line and a count in the metrics; nothing here allows on an error in enforce
 * mode, and a request the gate cannot read is a 400 (or, when its uid can be read, a deny with
 * the reason), never a 5xx.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import { boundWarnings, imagesOf, jsonPatch, parseReview, reviewResponse, type AdmissionRequest, type AdmissionResponse } from './admission.js';
import { decideImage, type ImageDecision } from './decide.js';
import type { Policy } from './policy.js';
import { GateTrustCache } from './trust-cache.js';

export const MAX_BODY_BYTES = 8 * 1024 * 1024;
const CONCURRENCY = 32;

export interface GateServerOptions {
  host: string;
  port: number;
  /** PEM; both or neither (plain http is for local trials only). */
  tls?: { cert: string; key: string };
  logger: Logger;
}

export interface RunningGate {
  url: string;
  /** Swap the policy in use (a reload). */
  setPolicy(policy: Policy): void;
  policy(): Policy;
  trust: GateTrustCache;
  close(): Promise<void>;
}

class GateMetrics {
  readonly registry = new Registry();
  readonly decisions = new Counter({
    name: 'signet_gate_decisions_total',
    help: 'Admission and verify decisions',
    labelNames: ['endpoint', 'allowed'],
    registers: [this.registry],
  });
  /** result: verified (signed as the rule asks), warned (admitted by a warn rule though it failed), denied, or allowed (an allow rule). */
  readonly images = new Counter({ name: 'signet_gate_images_total', help: 'Image decisions', labelNames: ['result', 'mode'], registers: [this.registry] });
  readonly trustFetches: Counter;
  readonly cosignLookups: Counter;
  constructor(
    stats: () => { fetches: number; hits: number; refreshes: number },
    cosignStats: () => { fetches: number; hits: number; refreshes: number; resolves: number },
  ) {
    const registry = this.registry;
    this.cosignLookups = new Counter({
      name: 'signet_gate_cosign_cache_total',
      help: 'Cosign lookups of the gate: signature reads from registries, cache hits, background refreshes, tag to digest lookups',
      labelNames: ['event'],
      registers: [registry],
      collect() {
        const now = cosignStats();
        this.reset();
        this.inc({ event: 'fetch' }, now.fetches);
        this.inc({ event: 'hit' }, now.hits);
        this.inc({ event: 'refresh' }, now.refreshes);
        this.inc({ event: 'resolve' }, now.resolves);
      },
    });
    this.trustFetches = new Counter({
      name: 'signet_gate_trust_cache_total',
      help: 'Trust data lookups of the gate: fetches from trust sources, cache hits, background refreshes',
      labelNames: ['event'],
      registers: [registry],
      collect() {
        const now = stats();
        this.reset();
        this.inc({ event: 'fetch' }, now.fetches);
        this.inc({ event: 'hit' }, now.hits);
        this.inc({ event: 'refresh' }, now.refreshes);
      },
    });
  }
  readonly latency = new Histogram({
    name: 'signet_gate_decision_seconds',
    help: 'Time to decide one request',
    labelNames: ['endpoint'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly badRequests = new Counter({
    name: 'signet_gate_bad_requests_total',
    help: 'Requests the gate could not read',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
}

function resultOf(d: ImageDecision): 'verified' | 'warned' | 'denied' | 'allowed' {
  if (!d.allowed) return 'denied';
  if (d.reasons.length > 0) return 'warned';
  return d.digest ? 'verified' : 'allowed';
}

async function readBody(req: http.IncomingMessage): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return 'too-large';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return 'too-large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Decide every unique image concurrently (at most CONCURRENCY at once), all within one budget:
 * the policy's budgetMs is for the whole request, however many images it has, so that the
 * answer comes before the API server's webhook timeout.
 */
async function decideAll(images: string[], policy: Policy, trust: GateTrustCache, started: number): Promise<Map<string, ImageDecision>> {
  const out = new Map<string, ImageDecision>();
  const deadline = started + policy.budgetMs;
  let next = 0;
  const worker = async () => {
    while (next < images.length) {
      const image = images[next++]!;
      out.set(image, await decideImage(image, policy, trust, Math.max(0, deadline - Date.now())));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, images.length) }, worker));
  return out;
}

export async function startGateServer(initial: Policy, options: GateServerOptions): Promise<RunningGate> {
  let policy = initial;
  const log = options.logger;
  const trust = new GateTrustCache(policy.refreshMs, (source, gun, err) =>
    log.warn('trust data refresh failed; the cached data is used until it expires', { source, gun, error: (err as Error).message }),
  );
  trust.configure(policy.trust.values(), policy.refreshMs, policy.cosign.values());
  const metrics = new GateMetrics(
    () => trust.stats,
    () => trust.cosign.stats,
  );
  let readyCache: { at: number; ok: boolean; body: object } | null = null;

  const send = (res: http.ServerResponse, status: number, body: unknown, type = 'application/json') => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  };

  /** One structured line per image decision: the evidence. */
  const logDecision = (d: ImageDecision, started: number, about: Record<string, unknown>) =>
    log.info('gate decision', {
      ...about,
      image: d.image,
      digest: d.digest,
      rule: d.rule,
      mode: d.mode,
      signers: d.signers,
      evidence: d.evidence,
      allowed: d.allowed,
      reasons: d.reasons,
      ms: Date.now() - started,
    });

  async function admission(request: AdmissionRequest, mutate: boolean, started: number): Promise<AdmissionResponse> {
    const base = { uid: request.uid };
    if (request.operation === 'DELETE' || request.operation === 'CONNECT') return { ...base, allowed: true };
    if (request.namespace && policy.excludedNamespaces.has(request.namespace))
      return { ...base, allowed: true, auditAnnotations: { 'signet.gate/skipped': 'namespace excluded' } };
    const sites = imagesOf(request);
    const bad = sites.filter((s) => typeof s.image !== 'string');
    if (bad.length > 0) return { ...base, allowed: false, status: { code: 400, message: `${bad[0]!.path}: the image must be a string` } };
    const unique = [...new Set(sites.map((s) => s.image as string))];
    const decisions = await decideAll(unique, policy, trust, started);
    const denied = [...decisions.values()].filter((d) => !d.allowed);
    const warnings = [...decisions.values()]
      .filter((d) => d.allowed && d.reasons.length > 0)
      .map((d) => `${d.image}: ${d.reasons.join('; ')} (warn mode: not refused for this)`);
    for (const d of decisions.values()) {
      metrics.images.inc({ result: resultOf(d), mode: d.mode });
      logDecision(d, started, {
        uid: request.uid,
        namespace: request.namespace,
        object: `${request.kind.kind}/${request.name ?? ''}`,
        operation: request.operation,
      });
    }
    const response: AdmissionResponse = { ...base, allowed: denied.length === 0 };
    if (warnings.length) response.warnings = boundWarnings(warnings);
    if (denied.length) {
      const message = denied.map((d) => `${d.image}: ${d.reasons.join('; ')}`).join(' | ');
      response.status = { code: 403, message: message.length > 4096 ? `${message.slice(0, 4093)}...` : message };
      return response;
    }
    if (mutate) {
      const ops = sites.flatMap((s) => {
        const pinned = decisions.get(s.image as string)?.pinned;
        return pinned && pinned !== s.image ? [{ op: 'replace' as const, path: s.path, value: pinned }] : [];
      });
      if (ops.length) {
        response.patchType = 'JSONPatch';
        response.patch = jsonPatch(ops);
      }
    }
    return response;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gate');
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /healthz') return send(res, 200, { ok: true });
    if (route === 'GET /readyz') {
      if (!readyCache || Date.now() - readyCache.at > 5_000) {
        const sources = await trust.reachable();
        const ok = sources.every((s) => s.ok);
        readyCache = { at: Date.now(), ok, body: { ok, policy: policy.file, sources } };
      }
      return send(res, readyCache.ok ? 200 : 503, readyCache.body);
    }
    if (route === 'GET /metrics') return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    const endpoint = { 'POST /mutate': 'mutate', 'POST /validate': 'validate', 'POST /v1/verify': 'verify' }[route];
    if (!endpoint)
      return send(res, url.pathname === '/mutate' || url.pathname === '/validate' || url.pathname === '/v1/verify' ? 405 : 404, { error: `no route ${route}` });
    const started = Date.now();
    const end = metrics.latency.startTimer({ endpoint });
    const refuse = (status: number, message: string) => {
      metrics.badRequests.inc({ endpoint });
      end();
      send(res, status, { error: message });
    };
    const body = await readBody(req);
    if (body === 'too-large') return refuse(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return refuse(400, 'the body is not JSON');
    }
    if (endpoint === 'verify') {
      const image = (json as { image?: unknown } | null)?.image;
      if (typeof image !== 'string' || image.length === 0) return refuse(400, 'image: a string is needed ({"image": "registry/repository:tag"})');
      const d = await decideImage(image, policy, trust);
      metrics.decisions.inc({ endpoint, allowed: String(d.allowed) });
      metrics.images.inc({ result: resultOf(d), mode: d.mode });
      logDecision(d, started, { endpoint });
      end();
      return send(res, 200, {
        allowed: d.allowed,
        image: d.image,
        digest: d.digest ?? null,
        rule: d.rule ?? null,
        mode: d.mode,
        signers: d.signers,
        evidence: d.evidence,
        reasons: d.reasons,
      });
    }
    let request: AdmissionRequest;
    try {
      request = parseReview(json);
    } catch (err) {
      // A review whose uid can be read gets a deny the API server shows; anything else a 400.
      const uid = (json as { request?: { uid?: unknown } } | null)?.request?.uid;
      if (typeof uid === 'string' && uid.length > 0 && uid.length <= 256 && (json as { apiVersion?: unknown }).apiVersion === 'admission.k8s.io/v1') {
        metrics.badRequests.inc({ endpoint });
        end();
        return send(
          res,
          200,
          reviewResponse({ uid, allowed: false, status: { code: 400, message: `signet gate cannot read the request: ${(err as Error).message}` } }),
        );
      }
      return refuse(400, (err as Error).message);
    }
    let response: AdmissionResponse;
    try {
      response = await admission(request, endpoint === 'mutate', started);
    } catch (err) {
      const code = signetErrorCode(err);
      response = { uid: request.uid, allowed: false, status: { code: code === 'BAD_REVIEW' ? 400 : 500, message: `signet gate: ${(err as Error).message}` } };
      if (code !== 'BAD_REVIEW') log.warn('gate error (denied)', { uid: request.uid, error: (err as Error).message });
    }
    metrics.decisions.inc({ endpoint, allowed: String(response.allowed) });
    end();
    send(res, 200, reviewResponse(response));
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      log.warn('gate request failed', { error: (err as Error).message });
      if (!res.headersSent) send(res, 400, { error: 'the request could not be handled' });
      else res.destroy();
    });
  };
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, listener) : http.createServer(listener);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`,
    trust,
    policy: () => policy,
    setPolicy(next) {
      policy = next;
      trust.configure(next.trust.values(), next.refreshMs, next.cosign.values());
      readyCache = null;
    },
    // Stop taking connections, let the requests being decided finish (the API server would
    // otherwise refuse them under failurePolicy: Fail), then drop what is left.
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), policy.budgetMs + 1_000);
        server.close(() => {
          clearTimeout(force);
          trust.close();
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
