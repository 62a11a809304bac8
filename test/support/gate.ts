/**
 * For the deploy gate's tests: AdmissionReviews as the Kubernetes API server sends them (full
 * objects of every kind the gate checks, with the fields the API server fills in), a small
 * HTTP(S) client for the gate's routes, policy files and a logger whose lines can be read.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

// ---- HTTP ----

export interface GateAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json: any;
  ms: number;
}

/** One request to the gate: `body` is sent as JSON unless it is a string or Buffer (sent as is). */
export function gateRequest(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  opts: { ca?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<GateAnswer> {
  const started = Date.now();
  const url = new URL(route, base);
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method,
        agent: false,
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...(opts.headers ?? {}) },
        ...(opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: Date.now() - started });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${route}: no answer in time`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// ---- AdmissionReview ----

/** Where each kind lives in the API: group, version, resource. */
export const RESOURCES = {
  Pod: { group: '', version: 'v1', resource: 'pods', apiVersion: 'v1' },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments', apiVersion: 'apps/v1' },
  ReplicaSet: { group: 'apps', version: 'v1', resource: 'replicasets', apiVersion: 'apps/v1' },
  StatefulSet: { group: 'apps', version: 'v1', resource: 'statefulsets', apiVersion: 'apps/v1' },
  DaemonSet: { group: 'apps', version: 'v1', resource: 'daemonsets', apiVersion: 'apps/v1' },
  Job: { group: 'batch', version: 'v1', resource: 'jobs', apiVersion: 'batch/v1' },
  CronJob: { group: 'batch', version: 'v1', resource: 'cronjobs', apiVersion: 'batch/v1' },
  ReplicationController: { group: '', version: 'v1', resource: 'replicationcontrollers', apiVersion: 'v1' },
} as const;
export type Kind = keyof typeof RESOURCES;
export const ALL_KINDS = Object.keys(RESOURCES) as Kind[];

export interface Images {
  containers: string[];
  initContainers?: string[];
  ephemeralContainers?: string[];
}

function container(name: string, image: unknown) {
  return {
    name,
    image,
    imagePullPolicy: 'IfNotPresent',
    ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }],
    resources: { limits: { memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    env: [{ name: 'LOG_LEVEL', value: 'info' }],
    volumeMounts: [{ mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', name: 'kube-api-access-x7k2p', readOnly: true }],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
  };
}

/** A pod spec as the API server holds it after defaulting (service account volume and all). */
export function podSpec(images: Images, restartPolicy = 'Always'): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    containers: images.containers.map((image, i) => container(i === 0 ? 'app' : `sidecar-${i}`, image)),
    dnsPolicy: 'ClusterFirst',
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
    priority: 0,
    restartPolicy,
    schedulerName: 'default-scheduler',
    securityContext: { fsGroup: 2000, seccompProfile: { type: 'RuntimeDefault' } },
    serviceAccount: 'default',
    serviceAccountName: 'default',
    terminationGracePeriodSeconds: 30,
    tolerations: [
      { effect: 'NoExecute', key: 'node.kubernetes.io/not-ready', operator: 'Exists', tolerationSeconds: 300 },
      { effect: 'NoExecute', key: 'node.kubernetes.io/unreachable', operator: 'Exists', tolerationSeconds: 300 },
    ],
    volumes: [
      {
        name: 'kube-api-access-x7k2p',
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { items: [{ key: 'ca.crt', path: 'ca.crt' }], name: 'kube-root-ca.crt' } },
          ],
        },
      },
    ],
  };
  if (images.initContainers) spec['initContainers'] = images.initContainers.map((image, i) => container(`init-${i}`, image));
  if (images.ephemeralContainers) {
    spec['ephemeralContainers'] = images.ephemeralContainers.map((image, i) => ({
      name: `debugger-${i}`,
      image,
      imagePullPolicy: 'IfNotPresent',
      stdin: true,
      tty: true,
      targetContainerName: 'app',
      terminationMessagePath: '/dev/termination-log',
      terminationMessagePolicy: 'File',
    }));
  }
  return spec;
}

function metadata(kind: string, name: string, namespace: string) {
  return {
    name,
    namespace,
    labels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': kind.toLowerCase() },
    annotations: { 'deployment.kubernetes.io/revision': '1' },
    managedFields: [
      {
        apiVersion: RESOURCES[kind as Kind]?.apiVersion ?? 'v1',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app.kubernetes.io/name': {} } }, 'f:spec': {} },
        manager: 'kubectl-client-side-apply',
        operation: 'Update',
        time: '2026-12-01T10:00:00Z',
      },
    ],
  };
}

function template(spec: Record<string, unknown>) {
  return { metadata: { creationTimestamp: null, labels: { 'app.kubernetes.io/name': 'shop' } }, spec };
}

/** The object of `kind` with these images, as `kubectl apply` creates it (after defaulting). */
export function objectOf(kind: Kind, images: Images, name = 'shop', namespace = 'shop'): Record<string, unknown> {
  const { apiVersion } = RESOURCES[kind];
  const selector = { matchLabels: { 'app.kubernetes.io/name': 'shop' } };
  const head = { apiVersion, kind, metadata: metadata(kind, name, namespace) };
  switch (kind) {
    case 'Pod':
      return { ...head, metadata: { ...head.metadata, generateName: `${name}-` }, spec: podSpec(images), status: { phase: 'Pending', qosClass: 'Burstable' } };
    case 'Deployment':
      return {
        ...head,
        spec: {
          progressDeadlineSeconds: 600,
          replicas: 3,
          revisionHistoryLimit: 10,
          selector,
          strategy: { rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' }, type: 'RollingUpdate' },
          template: template(podSpec(images)),
        },
        status: {},
      };
    case 'ReplicaSet':
      return { ...head, spec: { replicas: 3, selector, template: template(podSpec(images)) }, status: { replicas: 0 } };
    case 'StatefulSet':
      return {
        ...head,
        spec: {
          podManagementPolicy: 'OrderedReady',
          replicas: 3,
          revisionHistoryLimit: 10,
          selector,
          serviceName: name,
          template: template(podSpec(images)),
          updateStrategy: { rollingUpdate: { partition: 0 }, type: 'RollingUpdate' },
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        },
        status: { replicas: 0, availableReplicas: 0 },
      };
    case 'DaemonSet':
      return {
        ...head,
        spec: {
          revisionHistoryLimit: 10,
          selector,
          template: template(podSpec(images)),
          updateStrategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 1 }, type: 'RollingUpdate' },
        },
        status: { currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0 },
      };
    case 'Job':
      return {
        ...head,
        spec: {
          backoffLimit: 6,
          completionMode: 'NonIndexed',
          completions: 1,
          parallelism: 1,
          suspend: false,
          podReplacementPolicy: 'TerminatingOrFailed',
          manualSelector: false,
          template: template(podSpec(images, 'Never')),
        },
        status: {},
      };
    case 'CronJob':
      return {
        ...head,
        spec: {
          concurrencyPolicy: 'Forbid',
          failedJobsHistoryLimit: 1,
          schedule: '*/5 * * * *',
          successfulJobsHistoryLimit: 3,
          suspend: false,
          jobTemplate: { metadata: { creationTimestamp: null }, spec: { backoffLimit: 2, template: template(podSpec(images, 'OnFailure')) } },
        },
        status: {},
      };
    case 'ReplicationController':
      return { ...head, spec: { replicas: 2, selector: { 'app.kubernetes.io/name': 'shop' }, template: template(podSpec(images)) }, status: { replicas: 0 } };
  }
}

/** JSON pointer of the pod spec in each kind. */
export const POD_SPEC_POINTER: Record<Kind, string> = {
  Pod: '/spec',
  Deployment: '/spec/template/spec',
  ReplicaSet: '/spec/template/spec',
  StatefulSet: '/spec/template/spec',
  DaemonSet: '/spec/template/spec',
  Job: '/spec/template/spec',
  CronJob: '/spec/jobTemplate/spec/template/spec',
  ReplicationController: '/spec/template/spec',
};

export interface ReviewOptions {
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  namespace?: string;
  name?: string;
  uid?: string;
  subResource?: string;
  oldObject?: unknown;
  dryRun?: boolean;
  /** The user the API server names (a controller for pods of workloads). */
  username?: string;
}

/** An AdmissionReview request as the API server sends it for `object` (a `kind`). */
export function admissionReview(kind: Kind, object: unknown, o: ReviewOptions = {}): Record<string, any> {
  const r = RESOURCES[kind];
  const operation = o.operation ?? 'CREATE';
  const gvk = { group: r.group, version: r.version, kind };
  const gvr = { group: r.group, version: r.version, resource: r.resource };
  const optionsKind = { CREATE: 'CreateOptions', UPDATE: 'UpdateOptions', DELETE: 'DeleteOptions', CONNECT: 'CreateOptions' }[operation];
  const meta = (object as { metadata?: { name?: string; namespace?: string } } | null)?.metadata;
  const objectName = meta?.name;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? randomUUID(),
      kind: gvk,
      resource: gvr,
      ...(o.subResource ? { subResource: o.subResource } : {}),
      requestKind: gvk,
      requestResource: gvr,
      ...(o.subResource ? { requestSubResource: o.subResource } : {}),
      ...(kind === 'Pod' && operation === 'CREATE' && !o.name ? {} : { name: o.name ?? objectName ?? 'shop' }),
      namespace: o.namespace ?? meta?.namespace ?? 'shop',
      operation,
      userInfo: {
        username: o.username ?? 'kubernetes-admin',
        uid: 'b3a6d3c1-2f0e-4c55-9a55-0f4b3f7d1e01',
        groups: o.username?.startsWith('system:serviceaccount:')
          ? ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated']
          : ['kubeadm:cluster-admins', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/credential-id': ['X509SHA256=0c1f'] },
      },
      object: operation === 'DELETE' ? null : object,
      oldObject: o.oldObject ?? (operation === 'DELETE' ? object : null),
      dryRun: o.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: optionsKind, ...(operation === 'CREATE' ? { fieldManager: 'kubectl-client-side-apply' } : {}) },
    },
  };
}

/** The JSONPatch of a response, decoded (undefined when there is none). */
export function patchOf(response: { patch?: string; patchType?: string }): { op: string; path: string; value?: unknown }[] | undefined {
  if (response.patch === undefined) return undefined;
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];
}

// ---- policy files and logs ----

/** Write a policy (a document, as JSON, which is YAML too; or YAML text) to `dir/name`. */
export function writePolicy(dir: string, policy: object | string, name = 'policy.yaml'): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof policy === 'string' ? policy : JSON.stringify(policy, null, 2));
  return file;
}

export interface CapturedLog {
  logger: Logger;
  /** Every line so far, parsed. */
  lines(): Record<string, any>[];
}

/** A real logger (pino, JSON lines) writing into memory. */
export function captureLog(level: 'debug' | 'info' | 'warn' = 'info'): CapturedLog {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger(level, sink);
  return {
    logger,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, any>),
  };
}

export async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 8_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
