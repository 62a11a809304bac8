/**
 * The gate's policy file (docs/gate.md): named trust sources (Notary v1 servers with pinned root
 * keys), rules that match images by glob, and namespaces to leave alone. YAML or JSON, checked
 * with zod; every mistake names the field and its line. Rules are chosen by specificity: of the
 * rules whose glob matches, the one with the longest literal prefix wins (Connaisseur's "most
 * specific rule"), ties going to the earlier rule.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { GateError } from './errors.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a name of letters, digits, _ . - (at most 63)');

const trustSourceSchema = z.strictObject({
  notary: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  ca: z.string().min(1).optional(),
  rootKeys: z.array(z.string().min(1)).min(1, 'pin at least one root key (a PEM certificate or public key file)'),
  auth: z.strictObject({ username: z.string().min(1), passwordFile: z.string().min(1) }).optional(),
});

const ruleSchema = z
  .strictObject({
    images: z.array(z.string().min(1).max(512)).min(1),
    trust: name.optional(),
    signers: z
      .array(z.string().regex(/^(targets|[a-z0-9][a-z0-9_-]*)$/, 'must be a signer name (a delegation) or "targets"'))
      .min(1)
      .optional(),
    threshold: z.number().int().min(1).optional(),
    mode: z.enum(['enforce', 'warn']).default('enforce'),
    pinDigest: z.boolean().default(false),
    /** Refuse images given by tag alone (for a validate-only gate whose manifests pin digests). */
    requireDigest: z.boolean().default(false),
    action: z.enum(['allow', 'deny']).optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.trust === undefined && rule.action === undefined)
      ctx.addIssue({ code: 'custom', message: 'a rule needs a trust source (trust) or an action (allow or deny)' });
    if (rule.trust !== undefined && rule.action !== undefined)
      ctx.addIssue({ code: 'custom', message: 'trust and action exclude each other', path: ['action'] });
    if (rule.threshold !== undefined && rule.signers === undefined) ctx.addIssue({ code: 'custom', message: 'threshold needs signers', path: ['threshold'] });
    if (rule.threshold !== undefined && rule.signers && rule.threshold > rule.signers.length) {
      ctx.addIssue({ code: 'custom', message: `threshold ${rule.threshold} is more than the ${rule.signers.length} signers listed`, path: ['threshold'] });
    }
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

export interface Rule {
  index: number;
  /** How the rule is named in decisions: its first glob. */
  name: string;
  images: string[];
  matchers: { glob: string; re: RegExp; literal: number }[];
  trust?: string;
  signers?: string[];
  threshold?: number;
  mode: 'enforce' | 'warn';
  pinDigest: boolean;
  requireDigest: boolean;
  action?: 'allow' | 'deny';
}

export interface Policy {
  file: string;
  trust: Map<string, TrustSource>;
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
  const parsed = policySchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An unknown field is named (and its line given) by itself, not by the object holding it.
    const at = issue.code === 'unrecognized_keys' && issue.keys.length > 0 ? [...issue.path, issue.keys[0]!] : issue.path;
    const line = lineOf(doc, lines, at);
    const field = at.length
      ? at
          .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
          .join('')
          .replace(/^\./, '')
      : '(top level)';
    throw new GateError('POLICY', `${file}${line ? `:${line}` : ''}: ${field}: ${issue.message}`);
  }
  const p = parsed.data;
  const base = path.dirname(path.resolve(file));
  const trust = new Map<string, TrustSource>();
  for (const [sourceName, s] of Object.entries(p.trust)) {
    const where = (field: string) => `${file}:${lineOf(doc, lines, ['trust', sourceName, field]) ?? '?'}: trust.${sourceName}.${field}`;
    const rootKeys = s.rootKeys.flatMap((k, i) => pinnedKeysFromPem(readPem(k, `${where('rootKeys')}[${i}]`, base), `${where('rootKeys')}[${i}]`));
    const source: TrustSource = { name: sourceName, url: s.notary, rootKeys };
    if (s.ca) source.ca = readPem(s.ca, where('ca'), base);
    if (s.auth) source.auth = { username: s.auth.username, password: readPem(s.auth.passwordFile, where('auth'), base).trim() };
    trust.set(sourceName, source);
  }
  const rules = p.rules.map((r, index): Rule => {
    if (r.trust !== undefined && !trust.has(r.trust)) {
      throw new GateError('POLICY', `${file}:${lineOf(doc, lines, ['rules', index, 'trust']) ?? '?'}: rules[${index}].trust: no trust source named ${r.trust}`);
    }
    return {
      index,
      name: r.images[0]!,
      images: r.images,
      matchers: r.images.map((glob) => ({ glob, re: globToRegExp(glob), literal: literalPrefix(glob) })),
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
    rules,
    excludedNamespaces: new Set(p.namespaces.exclude),
    refreshMs: p.cache.refreshSeconds * 1000,
    budgetMs: p.budgetMs,
  };
}
