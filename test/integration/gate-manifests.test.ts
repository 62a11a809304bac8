/**
 * deploy/kubernetes, checked without a cluster: every manifest is valid against the Kubernetes
 * API schema of its kind (kubernetes-models' validators), the webhooks are registered as the gate
 * needs them (fail closed, no side effects, every kind the gate reads, its own namespace and
 * kube-system left alone), make-certs.sh makes a serving certificate that chains to its CA and
 * names the Service, and the gate starts from the Deployment's own arguments, with the policy
 * and trust material mounted as the kubelet would mount them, and answers over that TLS.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { KINDS } from '../../src/gate/admission.js';
import { parsePolicy } from '../../src/gate/policy.js';
import { projectRoot } from '../support/paths.js';

const deployDir = path.join(projectRoot, 'deploy', 'kubernetes');
const script = path.join(deployDir, 'make-certs.sh');
const NAMESPACE = 'signet-gate';
const SERVICE_HOST = 'signet-gate.signet-gate.svc';
const SANS = ['signet-gate', 'signet-gate.signet-gate', 'signet-gate.signet-gate.svc', 'signet-gate.signet-gate.svc.cluster.local'];
const PLACEHOLDER = 'c2lnbmV0LWdhdGU6IHJ1biBtYWtlLWNlcnRzLnNoCg==';

type Obj = Record<string, any>;
interface Manifest {
  file: string;
  doc: Obj;
}

/** Every YAML document of a file, read as kubectl reads it (YAML 1.1). */
function documentsOf(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' });
  assert.ok(Array.isArray(docs), `${file}: not YAML`);
  return docs.flatMap((d) => {
    assert.deepEqual(d.errors, [], `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    const value = d.toJS() as Obj | null;
    return value === null ? [] : [value];
  });
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

const manifests: Manifest[] = yamlFiles(deployDir).flatMap((file) => documentsOf(file).map((doc) => ({ file: path.relative(deployDir, file), doc })));
const byKind = (kind: string, name?: string): Obj[] =>
  manifests.filter((m) => m.doc['kind'] === kind && (!name || m.doc['metadata']?.name === name)).map((m) => m.doc);
const one = (kind: string, name?: string): Obj => {
  const found = byKind(kind, name);
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''} expected, found ${found.length}`);
  return found[0]!;
};

/** Check an object against the schema of its apiVersion and kind; throws naming what is wrong. */
async function validateObject(doc: Obj): Promise<void> {
  const apiVersion = doc['apiVersion'] as string;
  const kind = doc['kind'] as string;
  assert.match(apiVersion, /^([a-z0-9.-]+\/)?v\d+((alpha|beta)\d+)?$/, `apiVersion ${apiVersion}`);
  const models = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, new (data: Obj) => { validate(): void }>;
  const Model = models[kind];
  assert.ok(Model, `no schema for ${apiVersion} ${kind}`);
  new Model(doc).validate();
}

let work: string;
let certs: string;
before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'signet-gate-manifests-'));
  certs = path.join(work, 'certs');
  const run = makeCerts(['--out', certs]);
  assert.equal(run.status, 0, run.stderr);
});
after(() => {
  rmSync(work, { recursive: true, force: true });
});

function makeCerts(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync('bash', [script, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
}

function openssl(args: string[]): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('every manifest in deploy/kubernetes is valid against its Kubernetes API schema', async () => {
  assert.ok(manifests.length >= 9, `only ${manifests.length} documents found`);
  for (const m of manifests) {
    await assert.doesNotReject(validateObject(m.doc), `${m.file}: ${m.doc['kind']} ${m.doc['metadata']?.name}`);
    if (m.doc['kind'] !== 'Namespace' && !String(m.doc['kind']).endsWith('WebhookConfiguration')) {
      assert.equal(m.doc['metadata']?.namespace, NAMESPACE, `${m.file}: ${m.doc['kind']} outside ${NAMESPACE}`);
    }
  }
  const kinds = new Set(manifests.map((m) => m.doc['kind']));
  for (const kind of [
    'Namespace',
    'ConfigMap',
    'ServiceAccount',
    'Deployment',
    'PodDisruptionBudget',
    'Service',
    'MutatingWebhookConfiguration',
    'ValidatingWebhookConfiguration',
  ]) {
    assert.ok(kinds.has(kind), `no ${kind}`);
  }
  // The validators do refuse broken objects.
  const deployment = structuredClone(one('Deployment'));
  deployment['spec'].replicas = 'two';
  await assert.rejects(validateObject(deployment), /replicas must be integer/);
  const webhook = structuredClone(one('ValidatingWebhookConfiguration'));
  webhook['webhooks'][0].failurePolicy = 'Sometimes';
  await assert.rejects(validateObject(webhook), /failurePolicy must be equal to one of the allowed values/);
  delete webhook['webhooks'][0].sideEffects;
  await assert.rejects(validateObject(webhook), /sideEffects/);
});

/** What the gate reads, by resource: each resource the webhooks send names the kind that arrives. */
const RESOURCES: Record<string, { group: string; kind: string }> = {
  pods: { group: '', kind: 'Pod' },
  'pods/ephemeralcontainers': { group: '', kind: 'Pod' },
  replicationcontrollers: { group: '', kind: 'ReplicationController' },
  deployments: { group: 'apps', kind: 'Deployment' },
  replicasets: { group: 'apps', kind: 'ReplicaSet' },
  statefulsets: { group: 'apps', kind: 'StatefulSet' },
  daemonsets: { group: 'apps', kind: 'DaemonSet' },
  jobs: { group: 'batch', kind: 'Job' },
  cronjobs: { group: 'batch', kind: 'CronJob' },
};

function checkWebhookConfiguration(config: Obj, kind: 'mutating' | 'validating'): void {
  const webhooks = config['webhooks'] as Obj[];
  assert.equal(webhooks.length, 1);
  const w = webhooks[0]!;
  assert.equal(w['failurePolicy'], 'Fail');
  assert.equal(w['sideEffects'], 'None');
  assert.equal(w['timeoutSeconds'], 10);
  assert.deepEqual(w['admissionReviewVersions'], ['v1']);
  assert.equal(w['matchPolicy'], 'Equivalent');
  assert.equal(w['clientConfig']?.url, undefined, 'the webhook calls the Service, not a URL');
  assert.deepEqual(w['clientConfig']?.service, { namespace: NAMESPACE, name: 'signet-gate', path: kind === 'mutating' ? '/mutate' : '/validate', port: 443 });
  if (kind === 'mutating') assert.equal(w['reinvocationPolicy'], 'IfNeeded');
  else assert.equal(w['reinvocationPolicy'], undefined);
  // Every resource in CREATE and UPDATE, under its own group and v1, and nothing the gate does not read.
  const covered = new Map<string, Set<string>>();
  for (const rule of w['rules'] as Obj[]) {
    assert.equal(rule['scope'] ?? '*', 'Namespaced');
    assert.deepEqual(rule['apiVersions'], ['v1']);
    for (const resource of rule['resources'] as string[]) {
      const known = RESOURCES[resource];
      assert.ok(known, `${resource}: not a resource the gate reads`);
      assert.deepEqual(rule['apiGroups'], [known.group], `${resource} is in the ${JSON.stringify(known.group)} group`);
      const ops = covered.get(resource) ?? new Set<string>();
      for (const op of rule['operations'] as string[]) ops.add(op);
      covered.set(resource, ops);
    }
  }
  for (const resource of Object.keys(RESOURCES)) {
    assert.deepEqual([...(covered.get(resource) ?? [])].sort(), ['CREATE', 'UPDATE'], `${resource}: CREATE and UPDATE`);
  }
  // The kinds that arrive are exactly the kinds the gate knows where to find images in.
  assert.deepEqual([...new Set(Object.values(RESOURCES).map((r) => r.kind))].sort(), [...KINDS].sort());
  const selector = w['namespaceSelector'] as Obj;
  assert.equal(selector['matchLabels'], undefined);
  const notIn = (selector['matchExpressions'] as Obj[]).find((e) => e['key'] === 'kubernetes.io/metadata.name' && e['operator'] === 'NotIn');
  assert.ok(notIn, 'namespaceSelector: kubernetes.io/metadata.name NotIn');
  for (const ns of [NAMESPACE, 'kube-system']) assert.ok((notIn['values'] as string[]).includes(ns), `${ns} is not excluded`);
}

test('both webhooks fail closed, have no side effects, and cover every kind the gate reads outside its own namespace', () => {
  checkWebhookConfiguration(one('MutatingWebhookConfiguration'), 'mutating');
  checkWebhookConfiguration(one('ValidatingWebhookConfiguration'), 'validating');
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    assert.equal(one(kind)['webhooks'][0].clientConfig.caBundle, PLACEHOLDER, `${kind}: the committed caBundle is the placeholder`);
  }
  // The namespace the webhooks exclude is the gate's.
  assert.equal(one('Namespace')['metadata'].name, NAMESPACE);
});

function gateContainer(): Obj {
  const deployment = one('Deployment', 'signet-gate');
  const containers = deployment['spec'].template.spec.containers as Obj[];
  assert.equal(containers.length, 1);
  return containers[0]!;
}

test('the Deployment runs two hardened replicas of the gate over TLS on 8443, behind the Service and a disruption budget', () => {
  const deployment = one('Deployment', 'signet-gate');
  const pod = deployment['spec'].template;
  assert.equal(deployment['spec'].replicas, 2);
  assert.equal(deployment['spec'].strategy.rollingUpdate.maxUnavailable, 0);
  const c = gateContainer();
  assert.deepEqual(c['command'], ['node', 'dist/src/cli/main.js']);
  assert.equal(c['args'][0], 'gate');
  for (const flag of ['--policy', '--tls-cert', '--tls-key']) assert.ok(c['args'].includes(flag), `no ${flag}`);
  assert.ok(!c['args'].includes('--plain-http'));
  assert.deepEqual(c['ports'], [{ name: 'https', containerPort: 8443, protocol: 'TCP' }]);
  assert.deepEqual(c['readinessProbe'].httpGet, { path: '/healthz', port: 'https', scheme: 'HTTPS' });
  assert.deepEqual(c['livenessProbe'].httpGet, { path: '/healthz', port: 'https', scheme: 'HTTPS' });
  assert.ok(c['resources'].requests.cpu && c['resources'].requests.memory && c['resources'].limits.memory);
  assert.equal(pod.spec.securityContext.runAsNonRoot, true);
  assert.equal(typeof pod.spec.securityContext.runAsUser, 'number', 'a numeric user, so that the kubelet can check it is not root');
  assert.notEqual(pod.spec.securityContext.runAsUser, 0);
  assert.equal(c['securityContext'].readOnlyRootFilesystem, true);
  assert.equal(c['securityContext'].allowPrivilegeEscalation, false);
  assert.deepEqual(c['securityContext'].capabilities.drop, ['ALL']);
  assert.equal(pod.spec.automountServiceAccountToken, false);
  const labels = pod.metadata.labels as Obj;
  const selects = (selector: Obj) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.ok(selects(deployment['spec'].selector.matchLabels));
  assert.ok(selects(one('PodDisruptionBudget')['spec'].selector.matchLabels));
  assert.equal(one('PodDisruptionBudget')['spec'].minAvailable, 1);
  const service = one('Service', 'signet-gate');
  assert.ok(selects(service['spec'].selector));
  assert.deepEqual(service['spec'].ports, [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
  // Every volume is mounted, and the TLS volume is the Secret make-certs.sh writes.
  const volumes = new Map((pod.spec.volumes as Obj[]).map((v) => [v['name'] as string, v]));
  for (const m of c['volumeMounts'] as Obj[]) assert.ok(volumes.has(m['name']), `no volume ${m['name']}`);
  assert.equal(volumes.get('tls')?.['secret']?.secretName, 'signet-gate-tls');
});

/**
 * Lay out under `root` what the kubelet would mount for the gate container: each ConfigMap's or
 * Secret's keys as files in its mount path. Returns the container's arguments, with paths under
 * `root`.
 */
function mountVolumes(root: string, secrets: Record<string, Obj>): string[] {
  const c = gateContainer();
  const pod = one('Deployment', 'signet-gate')['spec'].template.spec;
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v['name'] as string, v]));
  const mounts: string[] = [];
  for (const m of c['volumeMounts'] as Obj[]) {
    const v = volumes.get(m['name'])!;
    const dir = path.join(root, m['mountPath']);
    mkdirSync(dir, { recursive: true });
    mounts.push(m['mountPath']);
    let files: Record<string, Buffer> = {};
    if (v['configMap']) {
      const cm = one('ConfigMap', v['configMap'].name);
      files = Object.fromEntries(Object.entries(cm['data'] as Record<string, string>).map(([k, text]) => [k, Buffer.from(text)]));
    } else if (v['secret']) {
      const secret = secrets[v['secret'].secretName];
      assert.ok(secret, `no Secret ${v['secret'].secretName}`);
      files = Object.fromEntries(Object.entries(secret['data'] as Record<string, string>).map(([k, b64]) => [k, Buffer.from(b64, 'base64')]));
    }
    for (const [k, bytes] of Object.entries(files)) writeFileSync(path.join(dir, k), bytes);
  }
  return (c['args'] as string[]).map((a) => (a.startsWith('/') && mounts.some((m) => a.startsWith(`${m}/`)) ? path.join(root, a) : a));
}

test("the ConfigMap's policy is valid for signet gate, with the trust material the Deployment mounts", () => {
  const root = path.join(work, 'policy-check');
  const args = mountVolumes(root, { 'signet-gate-tls': documentsOf(path.join(certs, 'tls-secret.yaml'))[0]! });
  const file = args[args.indexOf('--policy') + 1]!;
  const policy = parsePolicy(readFileSync(file, 'utf8'), file);
  assert.equal(policy.trust.size, 1);
  const notary = policy.trust.get('notary')!;
  assert.equal(notary.rootKeys.length, 1);
  assert.equal(notary.rootKeys[0]!.asymmetricKeyType, 'ec');
  assert.ok(policy.rules.length >= 2);
  assert.ok(
    policy.rules.some((r) => r.images.includes('**')),
    'a catch-all rule',
  );
  // The policy leaves alone what the webhooks leave alone.
  const values = one('ValidatingWebhookConfiguration')['webhooks'][0].namespaceSelector.matchExpressions[0].values as string[];
  assert.deepEqual([...policy.excludedNamespaces].sort(), [...values].sort());
  assert.ok(policy.budgetMs < one('ValidatingWebhookConfiguration')['webhooks'][0].timeoutSeconds * 1000, 'the budget is below the webhook time-out');
});

test('make-certs.sh makes a CA and a serving certificate for the Service that chains to it', () => {
  const ca = path.join(certs, 'ca.crt');
  const crt = path.join(certs, 'tls.crt');
  assert.match(openssl(['verify', '-CAfile', ca, crt]), /: OK/);
  const text = openssl(['x509', '-in', crt, '-noout', '-text']);
  for (const name of SANS) assert.match(text, new RegExp(`DNS:${name.replace(/\./g, '\\.')}(,|\\s|$)`), `SAN ${name}`);
  assert.match(text, /Subject: CN\s*=\s*signet-gate\.signet-gate\.svc/);
  assert.match(text, /TLS Web Server Authentication/);
  assert.match(text, /CA:FALSE/);
  assert.match(openssl(['x509', '-in', ca, '-noout', '-text']), /CA:TRUE/);
  // Valid for the next 300 days (365 by default).
  openssl(['x509', '-in', crt, '-noout', '-checkend', String(300 * 86400)]);
  const cert = new X509Certificate(readFileSync(crt));
  assert.ok(cert.checkHost(SERVICE_HOST));
  assert.ok(cert.checkIssued(new X509Certificate(readFileSync(ca))));
  // The key is the certificate's, and only its owner may read it.
  assert.equal(openssl(['pkey', '-in', path.join(certs, 'tls.key'), '-pubout']), openssl(['x509', '-in', crt, '-noout', '-pubkey']));
  for (const secret of ['ca.key', 'tls.key', 'tls-secret.yaml']) assert.equal(statMode(path.join(certs, secret)), 0o600, secret);
});

function statMode(file: string): number {
  return statSync(file).mode & 0o777;
}

test('make-certs.sh writes the TLS Secret and the webhook configurations with the CA as their caBundle', async () => {
  const [secret] = documentsOf(path.join(certs, 'tls-secret.yaml'));
  await validateObject(secret!);
  assert.equal(secret!['type'], 'kubernetes.io/tls');
  assert.equal(secret!['metadata'].name, 'signet-gate-tls');
  assert.equal(secret!['metadata'].namespace, NAMESPACE);
  assert.deepEqual(Buffer.from(secret!['data']['tls.crt'], 'base64'), readFileSync(path.join(certs, 'tls.crt')));
  assert.deepEqual(Buffer.from(secret!['data']['tls.key'], 'base64'), readFileSync(path.join(certs, 'tls.key')));
  const bundle = readFileSync(path.join(certs, 'ca.crt')).toString('base64');
  for (const [file, kind] of [
    ['validating-webhook.yaml', 'validating'],
    ['mutating-webhook.yaml', 'mutating'],
  ] as const) {
    const [written] = documentsOf(path.join(certs, file));
    await validateObject(written!);
    checkWebhookConfiguration(written!, kind);
    assert.equal(written!['webhooks'][0].clientConfig.caBundle, bundle, `${file}: caBundle is the CA`);
    // Otherwise the same as the template.
    const template = documentsOf(path.join(deployDir, 'webhooks', file))[0]!;
    written!['webhooks'][0].clientConfig.caBundle = PLACEHOLDER;
    assert.deepEqual(written, template);
  }
});

test('make-certs.sh keeps its CA when run again, and a new CA rotates with both in the caBundle', () => {
  const dir = path.join(work, 'rotate');
  assert.equal(makeCerts(['--out', dir]).status, 0);
  const caBefore = readFileSync(path.join(dir, 'ca.crt'));
  const tlsBefore = readFileSync(path.join(dir, 'tls.crt'));
  const again = makeCerts(['--out', dir, '--days', '30']);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(readFileSync(path.join(dir, 'ca.crt')), caBefore);
  assert.notDeepEqual(readFileSync(path.join(dir, 'tls.crt')), tlsBefore);
  assert.match(again.stdout, new RegExp(`^caBundle: ${caBefore.toString('base64').replace(/[+/=]/g, '\\$&')}$`, 'm'));
  openssl(['x509', '-in', path.join(dir, 'tls.crt'), '-noout', '-checkend', String(29 * 86400)]);
  assert.equal(spawnSync('openssl', ['x509', '-in', path.join(dir, 'tls.crt'), '-noout', '-checkend', String(31 * 86400)]).status, 1);

  const rotated = makeCerts(['--out', dir, '--new-ca']);
  assert.equal(rotated.status, 0, rotated.stderr);
  const caAfter = readFileSync(path.join(dir, 'ca.crt'));
  assert.notDeepEqual(caAfter, caBefore);
  assert.deepEqual(readFileSync(path.join(dir, 'ca-previous.crt')), caBefore);
  assert.match(openssl(['verify', '-CAfile', path.join(dir, 'ca.crt'), path.join(dir, 'tls.crt')]), /: OK/);
  const caBundle = documentsOf(path.join(dir, 'validating-webhook.yaml'))[0]!['webhooks'][0].clientConfig.caBundle as string;
  assert.equal(Buffer.from(caBundle, 'base64').toString(), `${caAfter.toString()}${caBefore.toString()}`);
});

test('make-certs.sh refuses bad options', () => {
  const out = path.join(work, 'bad');
  for (const args of [
    ['--out', out, '--days', 'ten'],
    ['--out', out, '--days', '0'],
    ['--out'],
    ['--out', out, '--validate-only'],
    ['--out', out, '--bogus'],
  ]) {
    const r = makeCerts(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
  assert.throws(() => statSync(out), /ENOENT/, 'nothing written');
});

/** A kubectl that records its calls; `get` finds the objects named in FAKE_KUBECTL_HAS. */
function fakeKubectl(dir: string): string {
  const file = path.join(dir, 'kubectl');
  writeFileSync(
    file,
    `#!/usr/bin/env bash
echo "$*" >> "$FAKE_KUBECTL_LOG"
for a in "$@"; do if [ "$a" = get ]; then
  for has in $FAKE_KUBECTL_HAS; do case "$*" in *"$has"*) exit 0 ;; esac; done
  exit 1
fi; done
exit 0
`,
  );
  chmodSync(file, 0o755);
  return file;
}

test('make-certs.sh --apply: a first install registers the webhooks last, a renewal first; no Deployment, nothing applied', () => {
  const dir = path.join(work, 'apply');
  mkdirSync(dir, { recursive: true });
  const kubectl = fakeKubectl(dir);
  const run = (name: string, has: string, extra: string[] = []) => {
    const log = path.join(dir, `${name}.log`);
    writeFileSync(log, '');
    const r = makeCerts(['--out', path.join(dir, 'certs'), '--apply', ...extra], { KUBECTL: kubectl, FAKE_KUBECTL_LOG: log, FAKE_KUBECTL_HAS: has });
    const calls = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replaceAll(path.join(dir, 'certs'), 'OUT'));
    return { r, calls };
  };
  const first = run('first', 'deployment');
  assert.equal(first.r.status, 0, first.r.stderr);
  assert.deepEqual(first.calls, [
    '-n signet-gate get deployment signet-gate',
    'get validatingwebhookconfiguration signet-gate',
    'get mutatingwebhookconfiguration signet-gate',
    'apply -f OUT/tls-secret.yaml',
    '-n signet-gate rollout restart deployment signet-gate',
    '-n signet-gate rollout status deployment signet-gate --timeout=300s',
    'apply -f OUT/validating-webhook.yaml',
    'apply -f OUT/mutating-webhook.yaml',
  ]);
  const renewal = run('renewal', 'deployment validatingwebhookconfiguration', ['--validate-only']);
  assert.equal(renewal.r.status, 0, renewal.r.stderr);
  assert.deepEqual(renewal.calls.slice(3), [
    'apply -f OUT/validating-webhook.yaml',
    'apply -f OUT/tls-secret.yaml',
    '-n signet-gate rollout restart deployment signet-gate',
    '-n signet-gate rollout status deployment signet-gate --timeout=300s',
  ]);
  const none = run('none', '');
  assert.equal(none.r.status, 1);
  assert.match(none.r.stderr, /apply deploy\/kubernetes\/ first/);
  assert.deepEqual(none.calls, ['-n signet-gate get deployment signet-gate']);
});

function request(url: string, ca: Buffer, method: string, pathname: string, body?: unknown): Promise<{ status: number; json: any }> {
  const u = new URL(pathname, url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method,
        ca,
        servername: SERVICE_HOST,
        headers: { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function waitForListening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`the gate did not start: ${out}${err}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /signet gate listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the gate exited with ${code}: ${out}${err}`));
    });
  });
}

test("the gate starts from the Deployment's arguments and mounts, and answers over make-certs.sh's TLS", async () => {
  const [secret] = documentsOf(path.join(certs, 'tls-secret.yaml'));
  const root = path.join(work, 'pod');
  const args = mountVolumes(root, { 'signet-gate-tls': secret! });
  const port = args.indexOf('--port');
  assert.equal(args[port + 1], '8443');
  args[port + 1] = '0';
  // Loopback only, and no trust source is asked: the images below match an `allow` rule.
  const child = spawn(process.execPath, [path.join(projectRoot, 'dist', 'src', 'cli', 'main.js'), ...args, '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await waitForListening(child);
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(path.join(certs, 'ca.crt'));
    assert.deepEqual(await request(url, ca, 'GET', '/healthz'), { status: 200, json: { ok: true } });
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: '3f1c2a9e-0000-4000-8000-000000000001',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        namespace: 'default',
        name: 'pause',
        operation: 'CREATE',
        object: { spec: { containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10' }] } },
      },
    };
    for (const route of ['/validate', '/mutate']) {
      const res = await request(url, ca, 'POST', route, review);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
    }
    // A request from the gate's own namespace is admitted unchecked.
    const own = await request(url, ca, 'POST', '/validate', { ...review, request: { ...review.request, namespace: NAMESPACE, object: { spec: {} } } });
    assert.equal(own.json.response.allowed, true);
    // The certificate names the Service: a client asking for another name is refused.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const u = new URL(url);
        https.get({ host: u.hostname, port: u.port, path: '/healthz', ca, servername: 'gate.example.com' }, resolve).on('error', reject);
      }),
      /altnames|does not match/i,
    );
  } finally {
    child.kill('SIGTERM');
  }
});
