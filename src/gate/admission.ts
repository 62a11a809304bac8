/**
 * Kubernetes AdmissionReview v1 (admission.k8s.io/v1), as the API server sends it to a webhook:
 * where the images of each kind of object are (Pod and its ephemeral-containers subresource,
 * and every workload's pod template), and the response the API server accepts (uid echoed,
 * same apiVersion and kind; a JSONPatch, base64, only from the mutating webhook).
 */
import { z } from 'zod';
import { GateError } from './errors.js';

export const MAX_CONTAINERS = 1024;

const reviewSchema = z.object({
  apiVersion: z.literal('admission.k8s.io/v1', { error: 'apiVersion must be admission.k8s.io/v1' }),
  kind: z.literal('AdmissionReview', { error: 'kind must be AdmissionReview' }),
  request: z.object({
    uid: z.string().min(1).max(256),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    subResource: z.string().optional(),
    namespace: z.string().max(253).optional(),
    name: z.string().max(253).optional(),
    operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
    object: z.unknown().optional(),
    dryRun: z.boolean().optional(),
  }),
});
export type AdmissionRequest = z.infer<typeof reviewSchema>['request'];

/** Read a review; throws GateError BAD_REVIEW naming the problem. */
export function parseReview(body: unknown): AdmissionRequest {
  const parsed = reviewSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GateError('BAD_REVIEW', `${issue.path.join('.') || 'AdmissionReview'}: ${issue.message}`);
  }
  return parsed.data.request;
}

export interface ImageSite {
  /** JSON pointer of the `image` field, for a patch. */
  path: string;
  image: unknown;
}

const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;

/** Where the pod spec sits in each kind of object. */
const POD_SPEC_PATH: Record<string, string[]> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};
export const KINDS = Object.keys(POD_SPEC_PATH);

/** Every image of the object, with where it is; throws BAD_REVIEW for an object that is not one. */
export function imagesOf(request: AdmissionRequest): ImageSite[] {
  const kind = request.kind.kind;
  // Own keys only: a kind such as `constructor` or `__proto__` is not a kind the gate knows.
  const specPath = Object.hasOwn(POD_SPEC_PATH, kind) ? POD_SPEC_PATH[kind] : undefined;
  if (!specPath) throw new GateError('BAD_REVIEW', `objects of kind ${kind} are not checked by this gate: register only ${KINDS.join(', ')}`);
  let spec: unknown = request.object;
  for (const key of specPath) {
    spec = spec && typeof spec === 'object' && !Array.isArray(spec) ? (spec as Record<string, unknown>)[key] : undefined;
  }
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new GateError('BAD_REVIEW', `object.${specPath.join('.')}: a pod spec is needed`);
  const sites: ImageSite[] = [];
  for (const list of CONTAINER_LISTS) {
    const containers = (spec as Record<string, unknown>)[list];
    if (containers === undefined || containers === null) continue;
    if (!Array.isArray(containers)) throw new GateError('BAD_REVIEW', `object.${specPath.join('.')}.${list}: must be a list`);
    if (sites.length + containers.length > MAX_CONTAINERS) throw new GateError('BAD_REVIEW', `more than ${MAX_CONTAINERS} containers in one object`);
    containers.forEach((c: unknown, i) => {
      const image = c && typeof c === 'object' ? (c as Record<string, unknown>)['image'] : undefined;
      sites.push({ path: `/${[...specPath, list, String(i), 'image'].join('/')}`, image });
    });
  }
  return sites;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
  warnings?: string[];
  patchType?: 'JSONPatch';
  patch?: string;
  auditAnnotations?: Record<string, string>;
}

/** Warnings the API server relays to the user: at most a few, each short. */
export function boundWarnings(warnings: string[]): string[] {
  const out = warnings.slice(0, 16).map((w) => (w.length > 512 ? `${w.slice(0, 509)}...` : w));
  if (warnings.length > 16) out.push(`and ${warnings.length - 16} more`);
  return out;
}

export function reviewResponse(response: AdmissionResponse): object {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export function jsonPatch(ops: { op: 'replace'; path: string; value: string }[]): string {
  return Buffer.from(JSON.stringify(ops)).toString('base64');
}
