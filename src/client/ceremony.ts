/**
 * Key ceremonies on the client side: stage an update that needs more signatures than one
 * machine holds (a root rotation to several holders, a delegation with a threshold), and let
 * each holder review and sign it on their own machine with only their own key, against a
 * Signet server's staged updates (`/api/v1/repositories/{gun}/staged`).
 *
 * A holder never signs what the server merely claims: the `signed` part is checked against the
 * SHA-256 the server gives and signed as its canonical bytes, and the keys that may sign are
 * taken from the holder's own trusted state (the current root, the trusted parent of a
 * delegation) and from the staged root itself.
 */
import { z } from 'zod';
import { canonicalJson } from '../tuf/core/canonical-json.js';
import { sha256Hex } from '../tuf/core/hashes.js';
import { tufKeyId } from '../tuf/core/keys.js';
import { formatRfc3339 } from '../tuf/core/time.js';
import type { MetadataKey, RootSigned } from '../tuf/notary/metadata.js';
import { parentRole } from '../tuf/notary/roles.js';
import type { TrustedSet } from '../tuf/notary/trusted-set.js';
import { ClientError } from './errors.js';
import { KeyRing } from './key-ring.js';
import { rootCertificate } from './keys/index.js';
import { EXPIRY_MS, type Publisher } from './publisher.js';

const thresholdSchema = z.object({
  name: z.string(),
  description: z.string(),
  threshold: z.number(),
  keyIds: z.array(z.string()),
  signedBy: z.array(z.string()),
  pendingKeyIds: z.array(z.string()),
  needed: z.number(),
});

export const stagedUpdateSchema = z.object({
  id: z.string(),
  gun: z.string(),
  role: z.string(),
  version: z.number(),
  state: z.enum(['pending', 'published', 'cancelled', 'expired']),
  stagedBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  closedAt: z.string().nullable(),
  closedBy: z.string().nullable(),
  signedSha256: z.string(),
  signatures: z.array(z.object({ keyid: z.string(), method: z.string() })),
  thresholds: z.array(thresholdSchema).nullable(),
  pendingKeyIds: z.array(z.string()),
  outdated: z.string().nullable(),
  signed: z.record(z.string(), z.unknown()).optional(),
});
export type StagedUpdate = z.infer<typeof stagedUpdateSchema>;

const listSchema = z.object({ count: z.number(), staged: z.array(stagedUpdateSchema) });
const signAnswerSchema = z.object({
  staged: stagedUpdateSchema,
  added: z.array(z.string()),
  alreadySigned: z.array(z.string()),
  published: z.array(z.object({ role: z.string(), version: z.number() })).nullable(),
});
export type SignAnswer = z.infer<typeof signAnswerSchema>;

function answer<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new ClientError('SERVER', `the trust server's answer about ${what} is not what Signet sends: ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data;
}

/** `GUN@ID` as the commands print a staged update; a bare ID needs the repository separately. */
export function parseStagedReference(ref: string, repo?: string): { repo: string; id: string } {
  const at = ref.lastIndexOf('@');
  const id = at >= 0 ? ref.slice(at + 1) : ref;
  const name = at >= 0 ? ref.slice(0, at) : repo;
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
    throw new ClientError('BAD_INPUT', `${JSON.stringify(ref)} is not a staged update ID (REPO@ID, as stage list prints it)`);
  }
  if (!name) throw new ClientError('BAD_INPUT', `staged update ${id}: name its repository (REPO@ID, or --repo REPO)`);
  return { repo: name, id };
}

/** One line per difference between two `signed` objects: `~ path: old → new`, `+ path: new`, `- path: old`. */
export function readableDiff(before: unknown, after: unknown): string[] {
  const flat = (value: unknown, prefix: string, out: Map<string, string>) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) out.set(prefix, '{}');
      for (const [k, v] of entries) flat(v, prefix ? `${prefix}.${k}` : k, out);
      return;
    }
    let text = JSON.stringify(value) ?? 'null';
    if (text.length > 72) text = `${text.slice(0, 40)}… (${text.length} characters, sha256 ${sha256Hex(Buffer.from(text)).slice(0, 12)})`;
    out.set(prefix, text);
  };
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  if (before !== undefined && before !== null) flat(before, '', a);
  flat(after, '', b);
  const lines: string[] = [];
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(path);
    const y = b.get(path);
    if (x === y) continue;
    if (x === undefined) lines.push(`+ ${path}: ${y}`);
    else if (y === undefined) lines.push(`- ${path}: ${x}`);
    else lines.push(`~ ${path}: ${x} → ${y}`);
  }
  return lines;
}

export interface RootRotationOptions {
  /** The new root keys' certificates (as listed in root.json); none: a new local root key. */
  newKeys?: MetadataKey[];
  /** Keep the current root keys in the new root too. */
  keepCurrent?: boolean;
  /** The new root's threshold; default the current one, at most the number of keys. */
  threshold?: number;
  expiresInSeconds?: number;
}

export interface RootRotationResult {
  /** The staged update, unless the keys held here were enough and it was published at once. */
  staged: StagedUpdate | null;
  published: boolean;
  /** A root key created here (no --new-key given). */
  generatedKeyId: string | null;
  version: number;
}

export class Ceremony {
  constructor(readonly publisher: Publisher) {}

  private get keys(): KeyRing {
    return this.publisher.keys;
  }
  private get server() {
    return this.publisher.repository.server;
  }
  private get gun(): string {
    return this.publisher.repository.gun;
  }

  private async trusted(): Promise<TrustedSet> {
    const set = await this.publisher.state();
    if (!set) throw new ClientError('NOT_INITIALIZED', `${this.gun} has no trust data on ${this.server.base.origin}`);
    return set;
  }

  /** Signatures over `message` by every key held here among `candidates` (listed ID → key). */
  private async signaturesFor(message: Buffer, candidates: ReadonlyMap<string, MetadataKey>) {
    const ids = [...candidates.keys()];
    const held = this.keys.heldAmong(ids, Object.fromEntries(candidates));
    const out: { keyid: string; method: string; sig: string }[] = [];
    for (const id of held) {
      const key = await this.keys.unlock(canonicalIdOf(candidates.get(id)!));
      out.push(key.sign(message, id));
    }
    return out;
  }

  /** Stage a new root with other root keys (and threshold); signed here by whatever root keys this machine holds. */
  async stageRootRotation(options: RootRotationOptions = {}): Promise<RootRotationResult> {
    const set = await this.trusted();
    const current = set.root.signed;
    const now = this.publisher.repository.nowMs();
    const newKeys = new Map<string, MetadataKey>();
    if (options.keepCurrent) for (const id of current.roles['root']?.keyids ?? []) if (current.keys[id]) newKeys.set(id, current.keys[id]);
    for (const key of options.newKeys ?? []) {
      if (!key.keytype.endsWith('-x509'))
        throw new ClientError('BAD_INPUT', `root keys must be certificates for ${this.gun} (a CERTIFICATE PEM), not ${key.keytype}`);
      newKeys.set(tufKeyId(key.keytype, key.keyval.public), { keytype: key.keytype, keyval: { private: null, public: key.keyval.public } });
    }
    let generatedKeyId: string | null = null;
    if (!options.newKeys?.length) {
      const key = await this.keys.create('root', undefined);
      const cert = rootCertificate(key, this.gun, { notBeforeMs: now, notAfterMs: now + EXPIRY_MS.root });
      newKeys.set(cert.keyId, { keytype: cert.tufPublic.keytype, keyval: { private: null, public: cert.tufPublic.keyval.public } });
      generatedKeyId = key.keyId;
    }
    const threshold = options.threshold ?? Math.min(current.roles['root']?.threshold ?? 1, newKeys.size);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > newKeys.size) {
      throw new ClientError('BAD_INPUT', `the threshold must be between 1 and the number of new root keys (${newKeys.size}), got ${threshold}`);
    }
    const root = structuredClone(current) as RootSigned & Record<string, unknown>;
    root.version += 1;
    root['expires'] = formatRfc3339(now + EXPIRY_MS.root);
    const oldIds = root.roles['root']?.keyids ?? [];
    root.roles['root'] = { ...root.roles['root']!, keyids: [...newKeys.keys()], threshold };
    const used = new Set(Object.values(root.roles).flatMap((r) => r.keyids));
    for (const id of oldIds) if (!used.has(id)) delete root.keys[id];
    for (const [id, key] of newKeys) root.keys[id] = key;

    const message = canonicalJson(root);
    const candidates = new Map<string, MetadataKey>();
    for (const id of oldIds) if (current.keys[id]) candidates.set(id, current.keys[id]);
    for (const [id, key] of newKeys) candidates.set(id, key);
    const signatures = await this.signaturesFor(message, candidates);
    const signedIds = new Set(signatures.map((s) => s.keyid));
    const heldOld = oldIds.filter((id) => signedIds.has(id)).length;
    const heldNew = [...newKeys.keys()].filter((id) => signedIds.has(id)).length;
    if (heldOld >= (current.roles['root']?.threshold ?? 1) && heldNew >= threshold) {
      // Every threshold is met here: no ceremony needed.
      const bytes = Buffer.concat([Buffer.from('{"signed":'), message, Buffer.from(`,"signatures":${JSON.stringify(signatures)}}`)]);
      await this.server.publish(new Map([['root', bytes]]));
      return { staged: null, published: true, generatedKeyId, version: root.version };
    }
    const staged = answer(stagedUpdateSchema, await this.server.stage('root', { signed: root, signatures }, options.expiresInSeconds), 'the staged root');
    return { staged, published: false, generatedKeyId, version: root.version };
  }

  /**
   * Stage `tags` signed into `role` (targets or a delegation) when the keys here do not meet its
   * threshold: the next version of the role, signed by every key held here that may sign it.
   */
  async stageTargets(tags: ReadonlyMap<string, { digest: string; length: number }>, role: string, expiresInSeconds?: number): Promise<StagedUpdate> {
    const set = await this.trusted();
    const current = set.targets(role)?.signed;
    if (role !== 'targets' && !set.targets(parentRole(role))?.signed.delegations?.roles?.some((r) => r.name === role)) {
      throw new ClientError('BAD_INPUT', `${role} is not delegated in ${this.gun}`);
    }
    const doc = structuredClone(current ?? { _type: 'Targets', delegations: { keys: {}, roles: [] }, targets: {}, version: 0 }) as Record<string, unknown> & {
      version: number;
      targets?: Record<string, unknown> | null;
    };
    doc.version += 1;
    doc['expires'] = formatRfc3339(this.publisher.repository.nowMs() + EXPIRY_MS.targets);
    doc['delegations'] ??= { keys: {}, roles: [] };
    doc.targets ??= {};
    for (const [tag, target] of tags) {
      const hex = target.digest.startsWith('sha256:') ? target.digest.slice(7) : target.digest;
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new ClientError('BAD_INPUT', `not a sha256 digest: ${target.digest}`);
      doc.targets[tag] = { hashes: { sha256: Buffer.from(hex, 'hex').toString('base64') }, length: target.length };
    }
    const signatures = await this.signaturesFor(canonicalJson(doc), this.candidates(set, role, doc));
    return answer(stagedUpdateSchema, await this.server.stage(role, { signed: doc, signatures }, expiresInSeconds), `the staged ${role}`);
  }

  async list(state?: string): Promise<StagedUpdate[]> {
    return answer(listSchema, await this.server.listStaged(state), `the staged updates of ${this.gun}`).staged;
  }

  /** The staged update with its `signed` part checked against the SHA-256 the server gives. */
  async get(id: string): Promise<StagedUpdate & { signed: Record<string, unknown>; message: Buffer }> {
    const staged = answer(stagedUpdateSchema, await this.server.getStaged(id), `staged update ${id}`);
    if (staged.gun !== this.gun || staged.id !== id || !staged.signed)
      throw new ClientError('SERVER', `the trust server answered for another staged update than ${this.gun}@${id}`);
    const message = canonicalJson(staged.signed);
    if (sha256Hex(message) !== staged.signedSha256) {
      throw new ClientError('SERVER', `staged update ${id}: the signed part the server sent does not match its SHA-256 ${staged.signedSha256}`);
    }
    return { ...staged, signed: staged.signed, message };
  }

  /** The keys that may sign a staged role, from this machine's trusted state (and the staged root). */
  private candidates(set: TrustedSet, role: string, signed: Record<string, unknown>): Map<string, MetadataKey> {
    const out = new Map<string, MetadataKey>();
    const add = (ids: readonly string[], keys: Record<string, MetadataKey>) => {
      for (const id of ids) if (keys[id]) out.set(id, keys[id]);
    };
    const root = set.root.signed;
    if (role === 'root') {
      add(root.roles['root']?.keyids ?? [], root.keys);
      const staged = signed as Partial<RootSigned>;
      add(staged.roles?.['root']?.keyids ?? [], staged.keys ?? {});
    } else if (role === 'targets') {
      add(root.roles['targets']?.keyids ?? [], root.keys);
    } else {
      const parent = set.targets(parentRole(role))?.signed;
      const entry = parent?.delegations?.roles?.find((r) => r.name === role);
      if (entry) add(entry.keyids, parent?.delegations?.keys ?? {});
    }
    return out;
  }

  /** What `stage show` prints: the update, its diff against the current version, who still has to sign, what this machine could sign. */
  async show(id: string): Promise<{ staged: StagedUpdate; diff: string[]; currentVersion: number | null; signableHere: string[] }> {
    const staged = await this.get(id);
    const set = await this.trusted();
    const current = staged.role === 'root' ? set.root.signed : (set.targets(staged.role)?.signed ?? null);
    const signed = new Set(staged.signatures.map((s) => s.keyid));
    const candidates = this.candidates(set, staged.role, staged.signed);
    const signableHere = this.keys.heldAmong([...candidates.keys()], Object.fromEntries(candidates)).filter((k) => !signed.has(k));
    const rest: StagedUpdate = { ...staged };
    delete (rest as { message?: unknown }).message;
    return { staged: rest, diff: readableDiff(current, staged.signed), currentVersion: current?.version ?? null, signableHere };
  }

  /**
   * Sign a staged update with every key this machine holds that may sign it. A key that signed
   * it before is counted once: the server says so (`alreadySigned`).
   */
  async sign(id: string): Promise<SignAnswer> {
    const staged = await this.get(id);
    if (staged.state !== 'pending') throw new ClientError('UPDATE_REFUSED', `staged update ${this.gun}@${id} is ${staged.state}`);
    const set = await this.trusted();
    const candidates = this.candidates(set, staged.role, staged.signed);
    const signatures = await this.signaturesFor(staged.message, candidates);
    if (signatures.length === 0) {
      throw new ClientError(
        'NO_SIGNING_KEY',
        `no key in ${this.keys.store.trustDir} may sign staged update ${this.gun}@${id}; it waits for ${staged.pendingKeyIds.join(', ') || 'no one'}`,
      );
    }
    return answer(signAnswerSchema, await this.server.addStagedSignatures(id, signatures), `staged update ${id}`);
  }

  async cancel(id: string): Promise<StagedUpdate> {
    return answer(stagedUpdateSchema, await this.server.cancelStaged(id), `staged update ${id}`);
  }
}

/** The canonical key ID (the key file's name) of a key as metadata lists it. */
function canonicalIdOf(key: MetadataKey): string {
  const id = KeyRing.canonicalId(key);
  if (!id) throw new ClientError('BAD_INPUT', 'a listed key cannot be read');
  return id;
}
