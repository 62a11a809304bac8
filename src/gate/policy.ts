/**
 * The gate's policy file (docs/gate.md): named trust sources (Notary v1 servers with pinned root
 * keys, or Cosign public keys checked against signatures in the image's registry), rules that
 * match images by glob, and namespaces to leave alone. YAML or JSON, checked with zod; every
 * mistake names the field and its line. Rules are chosen by specificity: of the rules whose glob
 * matches, the one with the longest literal prefix wins (Connaisseur's "most specific rule"),
 * ties going to the earlier rule.
 *
 * A trust rule checks one source (`trust`, `signers`, `threshold`) or several: `allOf` (every
 * branch must hold: a Notary signer and a Cosign key, say) or `anyOf` (one branch is enough: an
 * old and a new pipeline during a migration).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { readCosignPublicKey } from '../cosign/keys.js';
import { GateError } from './errors.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a name of letters, digits, _ . - (at most 63)');

const authSchema = z.strictObject({ username: z.string().min(1), passwordFile: z.string().min(1) });

const notarySourceSchema = z.strictObject({
  notary: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  ca: z.string().min(1).optional(),
  rootKeys: z.array(z.string().min(1)).min(1, 'pin at least one root key (a PEM certificate or public key file)'),
  auth: authSchema.optional(),
});

const signerName = z.string().regex(/^(targets|[a-z0-9][a-z0-9_-]*)$/, 'must be a signer name (a delegation or a Cosign key name) or "targets"');
const keyName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a key name of lower-case letters, digits, _ and - (at most 63)');

/** The public Rekor log: its checkpoints are signed under the name rekor.sigstore.dev. */
export const DEFAULT_REKOR_URL = 'https://rekor.sigstore.dev';

const cosignSourceSchema = z.strictObject({
  cosign: z.strictObject({
    /** Key name → a PEM public key file (cosign.pub) or the PEM text itself. */
    keys: z.record(keyName, z.string().min(1)).refine((k) => Object.keys(k).length > 0, 'name at least one key'),
    /** Registry credentials besides the docker config's, sent to `registry` only when it is given. */
    auth: authSchema
      .extend({ registry: z.string().min(1).optional() })
      .strict()
      .optional(),
    /** CA certificate(s) of registries with a private CA, besides the system's. */
    ca: z.string().min(1).optional(),
    /** Verify bundles' transparency-log entries against these Rekor public keys (the log at `url`). */
    rekor: z
      .strictObject({
        publicKeys: z.array(z.string().min(1)).min(1),
        url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).default(DEFAULT_REKOR_URL),
      })
      .optional(),
  }),
});

/** A trust source is a mapping; which kind is told by its `cosign` or `notary` key. */
const trustSourceSchema = z.record(z.string(), z.unknown(), { error: 'a trust source must be a mapping (notary: URL, or cosign: {keys: …})' });

/**
 * `scan: {maxAge: 7d}`: the signature that counts must carry passing scan evidence (what Signet's
 * server-held signers sign into a target's `custom.signet.scan` after checking a report) for this
 * digest, from a report no older than maxAge. A number is seconds; a string is a number of
 * seconds, minutes, hours or days (`90m`, `7d`).
 */
const MAX_SCAN_AGE_S = 10 * 365 * 86400;
const scanSchema = z.strictObject({
  maxAge: z.union([z.number(), z.string()]).transform((value, ctx) => {
    const m = typeof value === 'string' ? /^([1-9][0-9]{0,5})([smhd])$/.exec(value) : null;
    const seconds = typeof value === 'number' ? value : m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] : Number.NaN;
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SCAN_AGE_S) {
      ctx.addIssue({ code: 'custom', message: `maxAge is seconds, or a duration such as 90m, 12h or 7d, at most ${MAX_SCAN_AGE_S / 86400}d` });
      return z.NEVER;
    }
    return seconds;
  }),
});

const branchSchema = z
  .strictObject({
    trust: name,
    signers: z.array(signerName).min(1).optional(),
    threshold: z.number().int().min(1).optional(),
    scan: scanSchema.optional(),
  })
  .superRefine((branch, ctx) => checkThreshold(branch, ctx));

function checkThreshold(r: { signers?: string[] | undefined; threshold?: number | undefined }, ctx: z.RefinementCtx): void {
  if (r.threshold !== undefined && r.signers === undefined) ctx.addIssue({ code: 'custom', message: 'threshold needs signers', path: ['threshold'] });
  if (r.threshold !== undefined && r.signers && r.threshold > r.signers.length) {
    ctx.addIssue({ code: 'custom', message: `threshold ${r.threshold} is more than the ${r.signers.length} signers listed`, path: ['threshold'] });
  }
}

const ruleSchema = z
  .strictObject({
    images: z.array(z.string().min(1).max(512)).min(1),
    trust: name.optional(),
    signers: z.array(signerName).min(1).optional(),
    threshold: z.number().int().min(1).optional(),
    scan: scanSchema.optional(),
    /** Every branch must hold (a Notary signer and a Cosign key, say). */
    allOf: z.array(branchSchema).min(1).max(16).optional(),
    /** One branch is enough (an old and a new pipeline during a migration). */
    anyOf: z.array(branchSchema).min(1).max(16).optional(),
    mode: z.enum(['enforce', 'warn']).default('enforce'),
    pinDigest: z.boolean().default(false),
    /** Refuse images given by tag alone (for a validate-only gate whose manifests pin digests). */
    requireDigest: z.boolean().default(false),
    action: z.enum(['allow', 'deny']).optional(),
  })
  .superRefine((rule, ctx) => {
    const kinds = [rule.trust !== undefined && 'trust', rule.allOf && 'allOf', rule.anyOf && 'anyOf', rule.action !== undefined && 'action'].filter(
      (k): k is string => typeof k === 'string',
    );
    if (kinds.length === 0) ctx.addIssue({ code: 'custom', message: 'a rule needs a trust source (trust, allOf or anyOf) or an action (allow or deny)' });
    if (kinds.length > 1) ctx.addIssue({ code: 'custom', message: `${kinds.join(' and ')} exclude each other`, path: [kinds[1]!] });
    if (rule.trust === undefined && (rule.signers !== undefined || rule.threshold !== undefined || rule.scan !== undefined)) {
      const field = rule.signers !== undefined ? 'signers' : rule.threshold !== undefined ? 'threshold' : 'scan';
      ctx.addIssue({ code: 'custom', message: `${field} goes with trust (in allOf and anyOf, give it in each branch)`, path: [field] });
    }
    checkThreshold(rule, ctx);
  });

export const policySchema = z.strictObject({
  version: z.literal(1),
  trust: z.record(name, trustSourceSchema).default({}),
  rules: z.array(ruleSchema).min(1),
  namespaces: z.strictObject({ exclude: z.array(z.string().min(1)).default([]) }).default({ exclude: [] }),
  cache: z
    .strictObject({
      /** Trust data older than this is refreshed in the background (it is never used past its timestamp's expiry). */
      refreshSeconds: z.number().int().min(1).max(86_400).default(30),
    })
    .default({ refreshSeconds: 30 }),
  /** Time budget of one decision, ms (below the webhook's timeoutSeconds). */
  budgetMs: z.number().int().min(100).max(29_000).default(5_000),
});
export type PolicyDocument = z.infer<typeof policySchema>;

export interface TrustSource {
  name: string;
  url: string;
  ca?: string;
  /** Pinned root public keys (from certificates or public key files). */
  rootKeys: KeyObject[];
  auth?: { username: string; password: string };
}

/** A trust source of kind `cosign`: named public keys, checked against signatures in the image's registry. */
export interface CosignSource {
  name: string;
  /** Key name → public key. */
  keys: Map<string, KeyObject>;
  /** Key name → a fingerprint of its key material (two names of one key share it). */
  keyIds: Map<string, string>;
  rekorKeys?: KeyObject[];
  /** The Rekor log's URL, with rekorKeys. */
  rekorURL?: string;
  auth?: { username: string; password: string; registry?: string };
  ca?: string;
}

/** One check of a trust rule: a source, and which of its signers must have signed. */
export interface TrustCheck {
  trust: string;
  kind: 'notary' | 'cosign';
  signers?: string[];
  threshold?: number;
  /** Notary only: a passing scan no older than this many seconds must be signed with the digest. */
  scanMaxAgeSeconds?: number;
}

export interface Rule {
  index: number;
  /** How the rule is named in decisions: its first glob. */
  name: string;
  images: string[];
  matchers: { glob: string; re: RegExp; literal: number }[];
  /** For a rule of one check (`trust:`), that check's fields. */
  trust?: string;
  signers?: string[];
  threshold?: number;
  /** The checks of a trust rule (one for `trust:`), and how they combine. */
  checks: TrustCheck[];
  combine: 'allOf' | 'anyOf';
  mode: 'enforce' | 'warn';
  pinDigest: boolean;
  requireDigest: boolean;
  action?: 'allow' | 'deny';
}

export interface Policy {
  file: string;
  /** The Notary v1 trust sources. */
  trust: Map<string, TrustSource>;
  /** The Cosign trust sources (names are shared with `trust`: one name, one source). */
  cosign: Map<string, CosignSource>;
  rules: Rule[];
  excludedNamespaces: Set<string>;
  refreshMs: number;
  budgetMs: number;
}

/** `*` matches within one path segment, `**` across segments; everything else literally. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function literalPrefix(glob: string): number {
  const star = glob.indexOf('*');
  return star === -1 ? glob.length + 1 : star; // an exact name beats any glob it equals
}

/** The rule for a normalised repository name (`registry/repository`: no tag, no digest). */
export function matchRule(policy: Policy, image: string): Rule | null {
  let best: { rule: Rule; literal: number } | null = null;
  for (const rule of policy.rules) {
    for (const m of rule.matchers) {
      if (m.re.test(image) && (!best || m.literal > best.literal)) best = { rule, literal: m.literal };
    }
  }
  return best?.rule ?? null;
}

function readPem(file: string, what: string, base: string): string {
  const full = path.resolve(base, file);
  try {
    return readFileSync(full, 'utf8');
  } catch (err) {
    throw new GateError('POLICY', `${what}: cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Public keys in a PEM file: certificates give their keys, PUBLIC KEY blocks are read as they are. */
export function pinnedKeysFromPem(pem: string, what: string): KeyObject[] {
  const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
  const keys: KeyObject[] = [];
  for (const block of blocks) {
    try {
      if (block.startsWith('-----BEGIN CERTIFICATE-----')) keys.push(new X509Certificate(block).publicKey);
      else if (block.startsWith('-----BEGIN PUBLIC KEY-----')) keys.push(createPublicKey(block));
    } catch (err) {
      throw new GateError('POLICY', `${what}: unreadable key: ${(err as Error).message}`);
    }
  }
  if (keys.length === 0) throw new GateError('POLICY', `${what}: no CERTIFICATE or PUBLIC KEY block`);
  return keys;
}

function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, at: readonly PropertyKey[]): number | null {
  for (let n = at.length; n >= 0; n--) {
    const where = at.slice(0, n) as (string | number)[];
    // A field of a mapping is on the line of its key (a block value starts on the next one).
    const parent = n > 0 ? doc.getIn(where.slice(0, -1), true) : undefined;
    if (isMap(parent)) {
      const key = parent.items.find((pair) => isScalar(pair.key) && pair.key.value === where[n - 1])?.key as { range?: [number, number, number] } | undefined;
      if (key?.range) return lines.linePos(key.range[0]).line;
    }
    const node = doc.getIn(where, true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return lines.linePos(node.range[0]).line;
  }
  return null;
}

/** Read and check a policy file; throws GateError POLICY naming the field and line. */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GateError('POLICY', `cannot read the policy ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parsePolicy(text, file);
}

export function parsePolicy(text: string, file = 'policy'): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    // linePos is only filled in with prettyErrors; the position is always there.
    const line = e.linePos?.[0]?.line ?? (e.pos?.[0] !== undefined ? lines.linePos(e.pos[0]).line : undefined);
    throw new GateError('POLICY', `${file}${line ? `:${line}` : ''}: not YAML or JSON: ${e.message.split('\n')[0]}`);
  }
  const fail = (issue: z.core.$ZodIssue, prefix: readonly PropertyKey[] = []): never => {
    // An unknown field is named (and its line given) by itself, not by the object holding it.
    const at = [...prefix, ...(issue.code === 'unrecognized_keys' && issue.keys.length > 0 ? [...issue.path, issue.keys[0]!] : issue.path)];
    const line = lineOf(doc, lines, at);
    const field = at.length
      ? at
          .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
          .join('')
          .replace(/^\./, '')
      : '(top level)';
    // A bad key of a record says why in its own issues.
    const message = issue.code === 'invalid_key' && issue.issues[0] ? issue.issues[0].message : issue.message;
    throw new GateError('POLICY', `${file}${line ? `:${line}` : ''}: ${field}: ${message}`);
  };
  const parsed = policySchema.safeParse(doc.toJS());
  if (!parsed.success) fail(parsed.error.issues[0]!);
  const p = parsed.data!;
  const base = path.dirname(path.resolve(file));
  const at = (where: (string | number)[]) =>
    `${file}:${lineOf(doc, lines, where) ?? '?'}: ${where
      .map((w) => (typeof w === 'number' ? `[${w}]` : `.${w}`))
      .join('')
      .slice(1)}`;
  const trust = new Map<string, TrustSource>();
  const cosign = new Map<string, CosignSource>();
  for (const [sourceName, raw] of Object.entries(p.trust)) {
    const where = (field: string) => at(['trust', sourceName, field]);
    if ('cosign' in raw) {
      const checked = cosignSourceSchema.safeParse(raw);
      if (!checked.success) fail(checked.error.issues[0]!, ['trust', sourceName]);
      const c = checked.data!.cosign;
      const keys = new Map<string, KeyObject>();
      const keyIds = new Map<string, string>();
      for (const [keyName, value] of Object.entries(c.keys)) {
        const what = at(['trust', sourceName, 'cosign', 'keys', keyName]);
        const pem = value.includes('-----BEGIN') ? value : readPem(value, what, base);
        let key: KeyObject;
        try {
          key = readCosignPublicKey(pem, what);
        } catch (err) {
          throw new GateError('POLICY', (err as Error).message);
        }
        keys.set(keyName, key);
        keyIds.set(keyName, key.export({ type: 'spki', format: 'der' }).toString('base64'));
      }
      const source: CosignSource = { name: sourceName, keys, keyIds };
      if (c.rekor) {
        source.rekorKeys = c.rekor.publicKeys.flatMap((k, i) => {
          const what = `${at(['trust', sourceName, 'cosign', 'rekor', 'publicKeys'])}[${i}]`;
          return pinnedKeysFromPem(k.includes('-----BEGIN') ? k : readPem(k, what, base), what);
        });
        source.rekorURL = c.rekor.url;
      }
      if (c.ca) source.ca = readPem(c.ca, at(['trust', sourceName, 'cosign', 'ca']), base);
      if (c.auth) {
        const password = readPem(c.auth.passwordFile, at(['trust', sourceName, 'cosign', 'auth']), base).trim();
        source.auth = { username: c.auth.username, password, ...(c.auth.registry ? { registry: c.auth.registry } : {}) };
      }
      cosign.set(sourceName, source);
      continue;
    }
    const checked = notarySourceSchema.safeParse(raw);
    if (!checked.success) fail(checked.error.issues[0]!, ['trust', sourceName]);
    const s = checked.data!;
    const rootKeys = s.rootKeys.flatMap((k, i) => pinnedKeysFromPem(readPem(k, `${where('rootKeys')}[${i}]`, base), `${where('rootKeys')}[${i}]`));
    const source: TrustSource = { name: sourceName, url: s.notary, rootKeys };
    if (s.ca) source.ca = readPem(s.ca, where('ca'), base);
    if (s.auth) source.auth = { username: s.auth.username, password: readPem(s.auth.passwordFile, where('auth'), base).trim() };
    trust.set(sourceName, source);
  }
  /** A check of rule `index` (a branch `b` of its allOf/anyOf, or the rule itself), with its source's kind. */
  const checkOf = (
    index: number,
    branch: (string | number)[],
    c: { trust: string; signers?: string[] | undefined; threshold?: number | undefined; scan?: { maxAge: number } | undefined },
  ): TrustCheck => {
    const path = ['rules', index, ...branch];
    const kind = trust.has(c.trust) ? 'notary' : cosign.has(c.trust) ? 'cosign' : undefined;
    if (!kind) throw new GateError('POLICY', `${at([...path, 'trust'])}: no trust source named ${c.trust}`);
    if (kind === 'cosign') {
      const keys = cosign.get(c.trust)!.keys;
      const unknown = c.signers?.find((n) => !keys.has(n));
      if (unknown !== undefined) {
        throw new GateError('POLICY', `${at([...path, 'signers'])}: ${c.trust} has no key named ${unknown} (its keys: ${[...keys.keys()].join(', ')})`);
      }
      if (c.scan) throw new GateError('POLICY', `${at([...path, 'scan'])}: scan evidence is signed into Notary targets; ${c.trust} is a Cosign source`);
    }
    return {
      trust: c.trust,
      kind,
      ...(c.signers !== undefined ? { signers: c.signers } : {}),
      ...(c.threshold !== undefined ? { threshold: c.threshold } : {}),
      ...(c.scan ? { scanMaxAgeSeconds: c.scan.maxAge } : {}),
    };
  };
  const rules = p.rules.map((r, index): Rule => {
    const branches = r.allOf ?? r.anyOf;
    const checks = branches
      ? branches.map((b, i) => checkOf(index, [r.allOf ? 'allOf' : 'anyOf', i], b))
      : r.trust !== undefined
        ? [checkOf(index, [], { trust: r.trust, signers: r.signers, threshold: r.threshold, scan: r.scan })]
        : [];
    return {
      index,
      name: r.images[0]!,
      images: r.images,
      matchers: r.images.map((glob) => ({ glob, re: globToRegExp(glob), literal: literalPrefix(glob) })),
      checks,
      combine: r.anyOf ? 'anyOf' : 'allOf',
      mode: r.mode,
      pinDigest: r.pinDigest,
      requireDigest: r.requireDigest,
      ...(r.trust !== undefined ? { trust: r.trust } : {}),
      ...(r.signers !== undefined ? { signers: r.signers } : {}),
      ...(r.threshold !== undefined ? { threshold: r.threshold } : {}),
      ...(r.action !== undefined ? { action: r.action } : {}),
    };
  });
  return {
    file,
    trust,
    cosign,
    rules,
    excludedNamespaces: new Set(p.namespaces.exclude),
    refreshMs: p.cache.refreshSeconds * 1000,
    budgetMs: p.budgetMs,
  };
}
