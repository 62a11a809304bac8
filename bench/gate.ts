/**
 * `npm run bench:gate`: the deploy gate (`signet gate`, its own process, as deployed) against a
 * bare node:https server answering the same AdmissionReview with fixed bytes, side by side on
 * loopback over the same TLS; then cold decisions against Signet as the trust server. Writes
 * bench/results/gate-<timestamp>.json and the "Deploy gate" section of docs/benchmarks.md
 * (between its markers; the rest of the page is left as it is) and prints a summary.
 * Everything it starts is stopped, even on failure.
 *
 * 1. Throughput: POST /validate and POST /mutate of one Pod with three containers (three images
 *    of three repositories, all signed by the required signer: allowed; /mutate pins them to
 *    their digests), trust data cached, N connections, warm-up then a measured window, a few
 *    rounds alternating the order of the two servers; medians across rounds.
 * 2. Cold decisions, each in a fresh gate process: the first POST /validate (empty cache, new
 *    process), then, after a policy reload to a new trust source (empty cache, warm process),
 *    the same review again, then the cached one, then a Pod of three tags of one repository
 *    (empty cache again). For each: wall time, the gate's CPU (/proc/PID/task/* /schedstat, ns)
 *    and the HTTP requests the gate made to the trust server (Signet's request log, checked
 *    against its /metrics counter).
 *
 * Environment (all optional):
 *   BENCH_GATE_DURATION=10    measured seconds per window
 *   BENCH_GATE_WARMUP=2       warm-up seconds per window (discarded)
 *   BENCH_GATE_ROUNDS=3
 *   BENCH_GATE_CONNECTIONS=50
 *   BENCH_GATE_COLD=10        fresh gate processes for the cold decisions
 *   BENCH_QUIET_WAIT=30       seconds to wait at the start for other work to calm down
 *   BENCH_NOISE_BUDGET=30     seconds the run may spend re-measuring windows run under interference
 */
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../test/support/paths.js';
import { writeGateOutputs, gateSummary, type ColdCase, type ColdSample, type GateRecord, type ThroughputRow } from './gate-report.js';
import { HttpClient, tlsSummary } from './http.js';
import { runPlan, sleep, type LoadSettings, type Plan, type PlannedRequest } from './load.js';
import { measureWithRetry, NoiseGuard } from './noise.js';
import { runBench, safe, cpuMs, machineBusyMs, onCleanup, run, spawnReady } from './proc.js';
import { makeTls, snapshotBuild, startSignet, tempDir } from './servers.js';

const say = (line: string) => console.log(line);

function envNumber(name: string, fallback: number, integer = false): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}`);
  return n;
}

const median = (values: number[]): number => {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

// ---- trust data ----

const REGISTRY = 'registry.bench.test';
const SIGNER = 'alice';
const PASSPHRASES = { DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: 'bench-passphrase', DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: 'bench-passphrase' };
/** Repository → tags signed there. */
const SIGNED: Record<string, string[]> = {
  [`${REGISTRY}/shop/web`]: ['1.4.2', '1.4.1', '1.4.0'],
  [`${REGISTRY}/shop/envoy`]: ['1.31.0'],
  [`${REGISTRY}/shop/migrate`]: ['2.0.3'],
};

/** A stand-in manifest per tag: what the digest and size are of. */
const manifestOf = (gun: string, tag: string) =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', bench: `${gun}:${tag}` }));
const digestOf = (gun: string, tag: string) => `sha256:${createHash('sha256').update(manifestOf(gun, tag)).digest('hex')}`;

/** `signet trust key generate`, `signer add` and `sign --digest --size` for every repository and tag. */
function publish(trustUrl: string, caCert: string, main: string): { seconds: number; commands: string[] } {
  const t0 = performance.now();
  const work = tempDir('signet-bench-gate-trust.');
  const keys = path.join(work, 'keys');
  mkdirSync(keys);
  const common = ['--server', trustUrl, '--tlscacert', caCert, '--trust-dir', path.join(work, 'trust')];
  const env = { ...process.env, ...PASSPHRASES };
  const commands: string[] = [];
  const trust = (...args: string[]) => {
    commands.push(`signet trust ${args.join(' ')}`);
    run(process.execPath, [main, 'trust', ...args, ...common], { env, timeoutMs: 60_000 });
  };
  trust('key', 'generate', SIGNER, '--dir', keys);
  for (const [gun, tags] of Object.entries(SIGNED)) {
    trust('signer', 'add', '--key', path.join(keys, `${SIGNER}.pub`), SIGNER, gun);
    for (const tag of tags) trust('sign', `${gun}:${tag}`, '--digest', digestOf(gun, tag), '--size', String(manifestOf(gun, tag).length));
  }
  return { seconds: (performance.now() - t0) / 1000, commands };
}

/** The root certificates of the repositories' first roots, as an operator pins them. */
async function rootCertificates(client: HttpClient): Promise<string[]> {
  const pems = new Set<string>();
  for (const gun of Object.keys(SIGNED)) {
    const root = JSON.parse((await client.get(`/v2/${gun}/_trust/tuf/1.root.json`)).toString()) as {
      signed: { keys: Record<string, { keyval: { public: string } }>; roles: { root: { keyids: string[] } } };
    };
    for (const id of root.signed.roles.root.keyids) pems.add(Buffer.from(root.signed.keys[id]!.keyval.public, 'base64').toString().trim());
  }
  return [...pems];
}

function policyText(source: string, trustUrl: string, caCert: string, rootKeysFile: string): string {
  return `version: 1
trust:
  ${source}:
    notary: ${trustUrl}
    ca: ${caCert}
    rootKeys: [${rootKeysFile}]
rules:
  - images: ["${REGISTRY}/shop/**"]
    trust: ${source}
    signers: [${SIGNER}]
    pinDigest: true
  - images: ["**"]
    action: deny
`;
}

// ---- the AdmissionReview ----

function container(name: string, image: string, port?: number) {
  return {
    name,
    image,
    imagePullPolicy: 'IfNotPresent',
    ...(port ? { ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }] } : {}),
    env: [
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    ],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
  };
}

/** A Pod CREATE as the API server sends it to a webhook (ReplicaSet-made, service account token volume). */
function review(uid: string, init: string[], containers: string[]): Buffer {
  const names = ['web', 'envoy', 'worker'];
  return Buffer.from(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        requestKind: { group: '', version: 'v1', kind: 'Pod' },
        requestResource: { group: '', version: 'v1', resource: 'pods' },
        namespace: 'shop',
        operation: 'CREATE',
        userInfo: {
          username: 'system:serviceaccount:kube-system:replicaset-controller',
          uid: '3c7a0a9e-1f7c-4a52-9d0f-2f1a8c1f6c11',
          groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
        },
        object: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            generateName: 'web-7d9f8b6c5d-',
            namespace: 'shop',
            labels: { app: 'web', 'pod-template-hash': '7d9f8b6c5d', 'app.kubernetes.io/part-of': 'shop' },
            annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-01T09:00:00Z' },
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'ReplicaSet',
                name: 'web-7d9f8b6c5d',
                uid: '9b1f3c2e-5d7a-4e8b-a1c3-6f2e9d8b7a65',
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          },
          spec: {
            ...(init.length ? { initContainers: init.map((image) => container('migrate', image)) } : {}),
            containers: containers.map((image, i) => container(names[i] ?? `c${i}`, image, 8080 + i)),
            restartPolicy: 'Always',
            terminationGracePeriodSeconds: 30,
            dnsPolicy: 'ClusterFirst',
            serviceAccountName: 'web',
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            schedulerName: 'default-scheduler',
            tolerations: [
              { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
              { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
            ],
            volumes: [
              {
                name: 'kube-api-access',
                projected: {
                  defaultMode: 420,
                  sources: [
                    { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
                    { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
                  ],
                },
              },
            ],
          },
          status: {},
        },
        oldObject: null,
        dryRun: false,
        options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      },
    }),
  );
}

const image = (gun: string, tag: string) => `${gun}:${tag}`;
const [WEB, ENVOY, MIGRATE] = Object.keys(SIGNED) as [string, string, string];
/** Three images of three repositories: the review of the throughput and the main cold case. */
const THREE_REPOS = { init: [image(MIGRATE, '2.0.3')], containers: [image(WEB, '1.4.2'), image(ENVOY, '1.31.0')] };
/** Three tags of one repository. */
const ONE_REPO = { init: [] as string[], containers: [image(WEB, '1.4.2'), image(WEB, '1.4.1'), image(WEB, '1.4.0')] };

interface ReviewAnswer {
  response: { uid: string; allowed: boolean; status?: { message: string }; patchType?: string; patch?: string };
}

function checkAllowed(what: string, body: Buffer, expectPatch: number): ReviewAnswer {
  const answer = JSON.parse(body.toString()) as ReviewAnswer;
  if (!answer.response?.allowed) throw new Error(`${what}: not allowed: ${body.toString().slice(0, 600)}`);
  if (expectPatch) {
    const ops = JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString() || '[]') as { value: string }[];
    if (ops.length !== expectPatch || !ops.every((o) => /@sha256:[0-9a-f]{64}$/.test(o.value)))
      throw new Error(`${what}: unexpected patch ${JSON.stringify(ops)}`);
  }
  return answer;
}

// ---- processes ----

interface GateProcess {
  url: string;
  pid: number;
  /** What the gate logged (stderr), when it logs to a file. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * `signet gate` as deployed, its own process. Its log (one line per image decision at the default
 * level) goes to a file, or to /dev/null under load: through a pipe, this process (the load
 * generator) would pay for reading it.
 */
async function startGate(main: string, policyFile: string, dir: string, logToFile: boolean, tlsFiles: { cert: string; key: string }): Promise<GateProcess> {
  const outFile = path.join(dir, `gate-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.out`);
  const errFile = logToFile ? `${outFile.slice(0, -4)}.log` : '/dev/null';
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  const child = spawn(
    process.execPath,
    [main, 'gate', '--policy', policyFile, '--tls-cert', tlsFiles.cert, '--tls-key', tlsFiles.key, '--host', '127.0.0.1', '--port', '0'],
    {
      stdio: ['ignore', out, err],
    },
  );
  closeSync(out);
  closeSync(err);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = onCleanup(
    `signet gate (pid ${child.pid})`,
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    () => {
      child.kill('SIGKILL');
    },
  );
  const deadline = performance.now() + 30_000;
  for (;;) {
    const m = /^signet gate listening on (\S+)$/m.exec(readFileSync(outFile, 'utf8'));
    if (m) return { url: m[1]!, pid: child.pid!, log: () => (logToFile ? readFileSync(errFile, 'utf8') : ''), stop };
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop();
      throw new Error(`signet gate did not start: ${readFileSync(outFile, 'utf8')}${logToFile ? readFileSync(errFile, 'utf8') : ''}`);
    }
    await sleep(10);
  }
}

/** CPU time of a process and all its threads, in ns (scheduler accounting, not clock ticks). */
function processCpuNs(pid: number): number | null {
  try {
    let sum = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
    return sum;
  } catch {
    return null;
  }
}

// ---- the trust server's requests ----

interface ServedRequest {
  method: string;
  path: string;
  status: number;
}

/** Request log lines of the trust server (SIGNET_LOG_REQUESTS=all), as they arrive. */
class RequestLog {
  readonly requests: ServedRequest[] = [];
  private partial = '';

  feed(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      if (!line.includes('"msg":"request"')) continue;
      try {
        const j = JSON.parse(line) as { method?: string; path?: string; status?: number };
        if (j.path && j.path !== '/metrics') this.requests.push({ method: j.method ?? '', path: j.path, status: j.status ?? 0 });
      } catch {
        // not a log line
      }
    }
  }
}

/** Requests Signet counted (signet_http_requests_total), its /metrics scrapes left out. */
async function countedRequests(client: HttpClient): Promise<number> {
  const text = (await client.get('/metrics')).toString();
  let sum = 0;
  for (const m of text.matchAll(/^signet_http_requests_total\{([^}]*)\} (\d+)/gm)) if (!/route="metrics"/.test(m[1]!)) sum += Number(m[2]);
  return sum;
}

// ---- one cold (or cached) decision ----

function post(agent: https.Agent, url: string, route: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${url}${route}`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function decideOnce(
  gate: GateProcess,
  agent: https.Agent,
  body: Buffer,
  images: number,
  trust: { client: HttpClient; log: RequestLog },
): Promise<ColdSample> {
  const counted0 = await countedRequests(trust.client);
  const logged0 = trust.log.requests.length;
  const ticks0 = cpuMs(gate.pid);
  const cpu0 = processCpuNs(gate.pid);
  const t0 = performance.now();
  const res = await post(agent, gate.url, '/validate', body);
  const ms = performance.now() - t0;
  // Let the gate finish what follows the answer (the decision's log lines) before reading its CPU.
  await sleep(50);
  const cpu1 = processCpuNs(gate.pid);
  const ticks1 = cpuMs(gate.pid);
  if (res.status !== 200) throw new Error(`POST /validate: HTTP ${res.status} ${res.body.toString().slice(0, 300)}`);
  checkAllowed('cold POST /validate', res.body, 0);
  const counted = (await countedRequests(trust.client)) - counted0;
  // The request log is written asynchronously: wait until it has every request Signet counted.
  for (let i = 0; i < 100 && trust.log.requests.length - logged0 < counted; i++) await sleep(10);
  const requests = trust.log.requests.slice(logged0);
  return {
    ms,
    cpuMs: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / 1e6 : NaN,
    cpuTicksMs: ticks0 !== null && ticks1 !== null ? ticks1 - ticks0 : NaN,
    images,
    requests: counted,
    logged: requests.map((r) => `${r.method} ${r.path} ${r.status}`),
  };
}

/** Wait until the gate has logged `count` policy reloads (it watches the file once a second). */
async function waitForReloads(gate: GateProcess, count: number): Promise<void> {
  const deadline = performance.now() + 10_000;
  while ((gate.log().match(/"msg":"policy reloaded"/g) ?? []).length < count) {
    if (performance.now() > deadline) throw new Error(`the gate did not reload its policy:\n${gate.log().slice(-1500)}`);
    await sleep(20);
  }
}

// ---- main ----

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const durationS = envNumber('BENCH_GATE_DURATION', 10);
  const warmupS = envNumber('BENCH_GATE_WARMUP', 2);
  const rounds = envNumber('BENCH_GATE_ROUNDS', 3, true);
  const connections = envNumber('BENCH_GATE_CONNECTIONS', 50, true);
  const coldRuns = envNumber('BENCH_GATE_COLD', 10, true);
  const noiseBudgetS = envNumber('BENCH_NOISE_BUDGET', 30);
  if (!existsSync(path.join(projectRoot, 'dist', 'bench', 'gate-bare-server.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm run bench:gate does)');
  run('sh', ['-c', 'command -v openssl']);
  const command = [
    ...Object.entries(process.env)
      .filter(([k]) => k.startsWith('BENCH_'))
      .map(([k, v]) => `${k}=${v}`),
    'npm run bench:gate',
  ].join(' ');
  say(
    `signet bench:gate: ${rounds} rounds of ${warmupS} s warm-up + ${durationS} s per server and endpoint at ${connections} connections; ${coldRuns} cold gates`,
  );

  // Every process started here runs the same compiled code, even if dist/ is rebuilt meanwhile.
  const srcDigest = snapshotBuild();
  const snapshots = path.join(projectRoot, 'bench', 'results', 'tmp');
  const snapshot = readdirSync(snapshots).find((n) => n.startsWith(`build-${process.pid}-`));
  if (!snapshot) throw new Error('the build snapshot is missing');
  const buildDir = path.join(snapshots, snapshot, 'dist');
  copyFileSync(path.join(projectRoot, 'dist', 'bench', 'gate-bare-server.js'), path.join(buildDir, 'bench', 'gate-bare-server.js'));
  const main = path.join(buildDir, 'src', 'cli', 'main.js');
  const git = safe(() => run('git', ['-C', projectRoot, 'describe', '--always', '--dirty']));
  say(`code: git ${git}, compiled src digest ${srcDigest}`);

  const guard = new NoiseGuard(noiseBudgetS * 1000, say);
  const loadavgStart = os.loadavg();
  const quietBefore = await guard.waitForQuiet(envNumber('BENCH_QUIET_WAIT', 30) * 1000, true);
  const tls = makeTls();
  const settings: LoadSettings = { durationS, warmupS, ca: tls.caPem };
  const work = tempDir('signet-bench-gate.');

  // The trust server, as the harness starts Signet (embedded PGlite, TLS), logging every request.
  const trustLog = new RequestLog();
  const trustServer = await startSignet({
    id: 'trust',
    label: 'Signet, embedded PGlite',
    dataDir: tempDir('signet-bench-gate-pglite.'),
    tls,
    env: { SIGNET_LOG_LEVEL: 'info', SIGNET_LOG_REQUESTS: 'all' },
  });
  trustServer.proc.child.stderr!.on('data', (c: Buffer) => trustLog.feed(c));
  const trustClient = new HttpClient(trustServer.url, tls.caPem);
  onCleanup('trust client', () => trustClient.close());
  say(`trust server: ${trustServer.url}`);
  const published = publish(trustServer.url, tls.caCert, main);
  say(`trust data: ${published.commands.length} signet trust commands in ${published.seconds.toFixed(1)} s`);
  const pems = await rootCertificates(trustClient);
  const rootKeysFile = path.join(work, 'root-keys.pem');
  writeFileSync(rootKeysFile, pems.join('\n') + '\n');
  const policyFile = path.join(work, 'policy.yaml');
  writeFileSync(policyFile, policyText('signet', trustServer.url, tls.caCert, rootKeysFile));

  const reviewThree = review('5c3f8b2a-7d41-4e0b-9a6c-2e8f1d4b7a90', THREE_REPOS.init, THREE_REPOS.containers);
  const reviewOne = review('0d9e7c6b-5a43-4f21-8e0d-9c8b7a6f5e41', ONE_REPO.init, ONE_REPO.containers);

  // ---- 1. throughput, cached ----
  say(
    `\n== throughput (load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')})`,
  );
  const gate = await startGate(main, policyFile, work, false, tls);
  const gateClient = new HttpClient(gate.url, tls.caPem);
  onCleanup('gate client', () => gateClient.close());
  const trustBefore = trustLog.requests.length;
  const answers: Record<string, Buffer> = {};
  for (const route of ['/validate', '/mutate']) {
    const r = await gateClient.request('POST', route, { body: reviewThree, headers: { 'content-type': 'application/json' } });
    if (r.status !== 200) throw new Error(`POST ${route}: HTTP ${r.status}`);
    checkAllowed(`POST ${route}`, r.body, route === '/mutate' ? 3 : 0);
    answers[route] = r.body;
  }
  const trustFetchRequests = trustLog.requests.length - trustBefore;
  const bareConfig = path.join(work, 'bare.json');
  writeFileSync(
    bareConfig,
    JSON.stringify({ cert: tls.cert, key: tls.key, responses: Object.fromEntries(Object.entries(answers).map(([p, b]) => [p, b.toString('base64')])) }),
  );
  const { proc: bare, match } = await spawnReady('gate-bare', process.execPath, [path.join(buildDir, 'bench', 'gate-bare-server.js'), bareConfig], {
    ready: /^gate-bare listening on (\S+)$/m,
  });
  const bareUrl = match[1]!;
  const bareClient = new HttpClient(bareUrl, tls.caPem);
  for (const route of ['/validate', '/mutate']) {
    const r = await bareClient.request('POST', route, { body: reviewThree, headers: { 'content-type': 'application/json' } });
    if (!r.body.equals(answers[route]!)) throw new Error(`the bare server's answer to ${route} differs from the gate's`);
  }
  bareClient.close();
  const servers = {
    gate: { url: gate.url, tls: await tlsSummary(gate.url, tls.caPem) },
    bare: { url: bareUrl, tls: await tlsSummary(bareUrl, tls.caPem) },
  };
  const decisionsOf = async () => {
    const text = (await gateClient.get('/metrics')).toString();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^signet_gate_decisions_total\{([^}]*)\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };
  const decisions0 = await decisionsOf();

  const plan = (route: string): Plan => {
    const req: PlannedRequest = { method: 'POST', path: route, body: reviewThree, headers: { 'content-type': 'application/json' }, kind: route.slice(1) };
    return () => () => req;
  };
  const rows: ThroughputRow[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order: ('gate' | 'bare')[] = round % 2 ? ['gate', 'bare'] : ['bare', 'gate'];
    for (const route of ['/validate', '/mutate']) {
      for (const server of order) {
        const url = server === 'gate' ? gate.url : bareUrl;
        const pid = server === 'gate' ? gate.pid : bare.pid;
        const label = `${server} POST ${route} round ${round}`;
        const { result, note } = await measureWithRetry(guard, label, () => runPlan(url, connections, plan(route), settings, { pid }));
        rows.push({ server, endpoint: route.slice(1), round, result, ...(note ? { note } : {}) });
        const bad = result.non2xx + result.errors ? `  non-2xx ${result.non2xx} errors ${result.errors}` : '';
        say(
          `  ${label.padEnd(30)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms  cpu ${(result.server.cpuUsPerResponse ?? NaN).toFixed(0)} µs/req  other load ${result.machine.otherPct.toFixed(0)}%${bad}`,
        );
      }
    }
  }
  const decisions1 = await decisionsOf();
  const denied = Object.entries(decisions1)
    .filter(([k]) => k.includes('allowed="false"'))
    .reduce((a, [k, v]) => a + v - (decisions0[k] ?? 0), 0);
  const allowedDecisions = Object.entries(decisions1)
    .filter(([k]) => k.includes('allowed="true"'))
    .reduce((a, [k, v]) => a + v - (decisions0[k] ?? 0), 0);
  if (denied > 0) throw new Error(`the gate denied ${denied} reviews under load`);
  const refreshRequests = trustLog.requests.length - trustBefore - trustFetchRequests;
  const gateRss = readFileSync(`/proc/${gate.pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)/m)?.[1];
  await bare.stop();
  gateClient.close();
  await gate.stop();

  // ---- 2. cold decisions ----
  say(
    `\n== cold decisions (load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')})`,
  );
  const cases: Record<ColdCase['id'], ColdSample[]> = { 'fresh-process': [], 'warm-process': [], cached: [], 'one-repository': [] };
  const coldBusy0 = machineBusyMs();
  const coldT0 = performance.now();
  const trust = { client: trustClient, log: trustLog };
  for (let i = 0; i < coldRuns; i++) {
    const file = path.join(work, `cold-${i}.yaml`);
    writeFileSync(file, policyText('signet', trustServer.url, tls.caCert, rootKeysFile));
    const g = await startGate(main, file, work, true, tls);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: tls.caPem });
    try {
      // The connection to the gate is open before the timed request, as the API server keeps it.
      const health = await new Promise<number>((resolve, reject) =>
        https.get(`${g.url}/healthz`, { agent }, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject),
      );
      if (health !== 200) throw new Error(`gate /healthz: ${health}`);
      await sleep(100);
      cases['fresh-process'].push(await decideOnce(g, agent, reviewThree, 3, trust));
      // A new trust source: an empty cache (and a new connection to the trust server) in a process that has decided before.
      writeFileSync(file, policyText('signet-b', trustServer.url, tls.caCert, rootKeysFile));
      await waitForReloads(g, 1);
      await sleep(50);
      cases['warm-process'].push(await decideOnce(g, agent, reviewThree, 3, trust));
      cases.cached.push(await decideOnce(g, agent, reviewThree, 3, trust));
      writeFileSync(file, policyText('signet-c', trustServer.url, tls.caCert, rootKeysFile));
      await waitForReloads(g, 2);
      await sleep(50);
      cases['one-repository'].push(await decideOnce(g, agent, reviewOne, 3, trust));
    } finally {
      agent.destroy();
      await g.stop();
    }
    const last = cases['fresh-process'].at(-1)!;
    say(
      `  gate ${i + 1}: fresh ${last.ms.toFixed(1)} ms, cpu ${last.cpuMs.toFixed(1)} ms, ${last.requests} requests; warm ${cases['warm-process'].at(-1)!.ms.toFixed(1)} ms, cpu ${cases['warm-process'].at(-1)!.cpuMs.toFixed(1)} ms; cached ${cases.cached.at(-1)!.ms.toFixed(2)} ms; one repository ${cases['one-repository'].at(-1)!.requests} requests`,
    );
  }

  const coldBusyPct = ((machineBusyMs() - coldBusy0) / ((performance.now() - coldT0) * os.availableParallelism())) * 100;
  const coldCases: ColdCase[] = (
    [
      ['fresh-process', 'new gate process, empty cache: its first decision'],
      ['warm-process', 'gate that has decided before, empty cache (policy reloaded to a new trust source)'],
      ['cached', 'the same review again, trust data cached'],
      ['one-repository', 'three tags of one repository, empty cache (warm process)'],
    ] as const
  ).map(([id, title]) => {
    const s = cases[id];
    return {
      id,
      title,
      runs: s.length,
      msMedian: median(s.map((x) => x.ms)),
      msMin: Math.min(...s.map((x) => x.ms)),
      msMax: Math.max(...s.map((x) => x.ms)),
      cpuMsMedian: median(s.map((x) => x.cpuMs)),
      cpuMsPerImage: median(s.map((x) => x.cpuMs / x.images)),
      requestsMedian: median(s.map((x) => x.requests)),
      requestsPerImage: median(s.map((x) => x.requests / x.images)),
      requestsPerRepository: median(s.map((x) => x.requests / new Set(x.logged.map((l) => l.split(' ')[1]!.split('/_trust/')[0])).size || 0)),
      samples: s,
    };
  });

  const record: GateRecord = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    elapsedS: (performance.now() - t0) / 1000,
    command,
    code: { git, srcDigest },
    settings: { durationS, warmupS, rounds, connections, coldRuns, noiseBudgetS },
    noise: { spentS: guard.spentS, remeasured: guard.retries },
    machine: {
      nproc: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      kernel: os.release(),
      node: process.version,
      free: safe(() => run('free', ['-h'])),
      loadavgStart,
      busyBeforeStartPct: quietBefore,
      loadavgEnd: os.loadavg(),
    },
    servers,
    trustServer: { url: trustServer.url, label: trustServer.label },
    trustData: { repositories: SIGNED, signer: SIGNER, commands: published.commands, rootCertificates: pems.length },
    reviewBytes: { threeRepositories: reviewThree.length, oneRepository: reviewOne.length },
    answers: { validate: answers['/validate']!.toString(), mutate: answers['/mutate']!.toString() },
    throughput: rows,
    underLoad: {
      allowedDecisions,
      denied,
      trustRequestsForFirstFetch: trustFetchRequests,
      trustRequestsDuringLoad: refreshRequests,
      gatePeakRssKb: gateRss ? Number(gateRss) : null,
    },
    cold: coldCases,
    coldMachineBusyPct: coldBusyPct,
  };
  const files = writeGateOutputs(projectRoot, record);
  say(gateSummary(record));
  say(`\nwritten: ${path.relative(projectRoot, files.json)}, ${path.relative(projectRoot, files.markdown)} (${record.elapsedS.toFixed(0)} s)`);
  return 0;
}

runBench('bench:gate', main);
