/**
 * `signet signers …`: server-held signers of a repository, administered on the store as the
 * other admin commands are (the HTTP API offers the same under /api/v1/repositories/{gun}/signers).
 * `create` prints the signer's public key and its delegation certificate for the repository
 * owner (`notary delegation add GUN targets/NAME cert.pem --all-paths`, `docker trust signer add
 * --key cert.pem NAME GUN`, or `signet trust signer add --server-held NAME GUN`).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ServiceContext } from '../service/context.js';
import {
  createSigner,
  deleteSigner,
  getSigner,
  listSigners,
  MAX_ROTATION_GRACE_MS,
  rotateSigner,
  setSignerRules,
  setSignerState,
  signerNameSchema,
  signerRulesSchema,
  type SignerRules,
  type SignerView,
} from '../service/signers.js';
import { UsageError, type Args, type CommandSpec } from './args.js';

const EXIT = 'Exit status: 0 done, 1 the signer (or repository) is missing or the change was refused, 2 usage error.';
const JSON_OPT = { json: { type: 'boolean' } } as const;
const RULES_HELP = `--rules FILE  JSON or YAML: {"identities": [{"kind": "registry-token"|"oidc", "subject": PATTERN,
              "claims": {"NAME": PATTERN}}], "tags": [PATTERN]}; a pattern is exact text or a glob
              (* within a / segment, ** across, ?), or a list of them. Any one identity rule admits
              a caller; none = every caller with push access.
--tag PATTERN      allow only these tags (repeatable; added to the file's)
--subject PATTERN  admit callers whose token subject matches (repeatable; one identity rule each)`;

const spec = (name: string, usage: string, options: CommandSpec['options'] = {}, positionals = ['GUN', 'NAME']): CommandSpec => ({
  name: `signers ${name}`,
  usage: `${usage}\n\n${EXIT}`,
  options: { ...JSON_OPT, ...options },
  positionals,
});

const RULE_OPTIONS = { rules: { type: 'string' }, tag: { type: 'string', multiple: true }, subject: { type: 'string', multiple: true } } as const;

export const SIGNER_SPECS: Record<string, CommandSpec> = {
  'signers create': spec(
    'create',
    `usage: signet signers create GUN NAME [--rules FILE] [--tag PATTERN]... [--subject PATTERN]... [--json]\n\nCreate server-held signer NAME of GUN: Signet generates its key (ECDSA P-256), keeps it\nencrypted under the key-encryption key, and prints its key ID and delegation certificate.\nThe repository owner then delegates to it (targets/NAME and targets/releases).\n${RULES_HELP}`,
    RULE_OPTIONS,
  ),
  'signers list': spec('list', 'usage: signet signers list GUN [--json]\n\nThe server-held signers of GUN with their state and active key.', {}, ['GUN']),
  'signers show': spec(
    'show',
    'usage: signet signers show GUN NAME [--json]\n\nSigner NAME of GUN: its rules, keys, certificate and the roles that list its keys.',
  ),
  'signers disable': spec('disable', 'usage: signet signers disable GUN NAME [--json]\n\nRefuse every signing call of signer NAME until it is enabled again.'),
  'signers enable': spec('enable', 'usage: signet signers enable GUN NAME [--json]\n\nLet a disabled signer sign again.'),
  'signers rotate': spec(
    'rotate',
    'usage: signet signers rotate GUN NAME [--grace SECONDS] [--json]\n\nGive signer NAME a new key and print its certificate. The previous key keeps signing for\nSECONDS (default 604800, 7 days; 0 = removed now) while the owner replaces it in the delegation\n(add the new certificate, then remove the old key), and is removed afterwards.',
    { grace: { type: 'string' } },
  ),
  'signers rules': spec(
    'rules',
    `usage: signet signers rules GUN NAME --rules FILE [--json]\n\nReplace the rules of signer NAME.\n${RULES_HELP}`,
    RULE_OPTIONS,
  ),
  'signers delete': spec(
    'delete',
    'usage: signet signers delete GUN NAME --yes [--json]\n\nRemove signer NAME and destroy its keys. The delegation stays in the metadata until the owner\nremoves it (signet trust signer remove NAME GUN).',
    { yes: { type: 'boolean' } },
  ),
};

function rulesOf(command: string, args: Args): SignerRules | undefined {
  const file = args.string('rules');
  const tags = args.strings('tag');
  const subjects = args.strings('subject');
  if (!file && tags.length === 0 && subjects.length === 0) return undefined;
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read --rules ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, command);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new UsageError(`--rules ${file} is neither JSON nor YAML: ${(e as Error).message}`, command);
    }
  }
  const parsed = signerRulesSchema.safeParse(raw);
  if (!parsed.success)
    throw new UsageError(`--rules ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'rules'}: ${i.message}`).join('; ')}`, command);
  const rules = parsed.data;
  if (tags.length > 0) rules.tags = [...(rules.tags ?? []), ...tags];
  if (subjects.length > 0) rules.identities = [...(rules.identities ?? []), ...subjects.map((subject) => ({ subject }))];
  const again = signerRulesSchema.safeParse(rules);
  if (!again.success) throw new UsageError(again.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), command);
  return again.data;
}

function graceMs(command: string, args: Args): number | undefined {
  const text = args.string('grace');
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) * 1000 > MAX_ROTATION_GRACE_MS) {
    throw new UsageError(`--grace must be a number of seconds from 0 to ${MAX_ROTATION_GRACE_MS / 1000}`, command);
  }
  return Number(text) * 1000;
}

/** Mistakes found without the database. */
export function checkSignerUsage(command: string, args: Args): void {
  const name = args.positionals[1];
  if (name !== undefined) {
    const ok = signerNameSchema.safeParse(name);
    if (!ok.success) throw new UsageError(ok.error.issues[0]!.message, command);
  }
  if (command === 'signers create' || command === 'signers rules') rulesOf(command, args);
  if (command === 'signers rules' && !args.string('rules')) throw new UsageError('--rules FILE is required', command);
  if (command === 'signers rotate') graceMs(command, args);
  if (command === 'signers delete' && !args.flag('yes')) throw new UsageError('pass --yes to confirm: the keys are destroyed', command);
}

function describe(s: SignerView): string {
  const lines = [`${s.gun} signer ${s.name}: ${s.state}, key ${s.keyId ?? '(none)'}`];
  for (const k of s.keys) if (k.state === 'retiring') lines.push(`  retiring key ${k.keyId}, signs until ${k.retireAfter}`);
  if (s.rules.identities?.length) lines.push(`  identities: ${JSON.stringify(s.rules.identities)}`);
  if (s.rules.tags?.length) lines.push(`  tags: ${s.rules.tags.join(', ')}`);
  if (s.delegatedIn) {
    lines.push(s.delegatedIn.length ? `  delegated in: ${s.delegatedIn.map((d) => d.role).join(', ')}` : '  not delegated to yet');
  }
  return lines.join('\n');
}

function withCertificate(s: SignerView): string {
  return [
    describe(s),
    '',
    s.certificate ?? '',
    `Delegate to it as the repository owner, with one of:`,
    `  signet trust signer add --server-held ${s.name} ${s.gun}`,
    `  docker trust signer add --key ${s.name}.crt ${s.name} ${s.gun}`,
    `  notary delegation add -p ${s.gun} targets/${s.name} ${s.name}.crt --all-paths   (and targets/releases)`,
    `(save the certificate above as ${s.name}.crt)`,
  ].join('\n');
}

const actor = () => ({ subject: `cli:${process.env['USER'] ?? 'admin'}` });

/** Run `signet signers SUB` on the store. */
export async function signersCommand(sub: string, args: Args, ctx: ServiceContext): Promise<number> {
  const [gun, name] = args.positionals as [string, string];
  const command = `signers ${sub}`;
  const out = (value: unknown, human: string) => console.log(args.flag('json') ? JSON.stringify(value, null, 2) : human);
  try {
    switch (sub) {
      case 'create': {
        const s = await createSigner(ctx, gun, name, rulesOf(command, args) ?? {}, actor());
        out(s, withCertificate(s));
        return 0;
      }
      case 'list': {
        const list = await listSigners(ctx, gun);
        out(list, list.length ? list.map(describe).join('\n') : `${gun} has no server-held signers`);
        return 0;
      }
      case 'show': {
        const s = await getSigner(ctx, gun, name);
        out(s, `${describe(s)}\n\n${s.certificate ?? ''}`);
        return 0;
      }
      case 'disable':
      case 'enable': {
        const s = await setSignerState(ctx, gun, name, sub === 'disable' ? 'disabled' : 'active', actor());
        out(s, describe(s));
        return 0;
      }
      case 'rotate': {
        const s = await rotateSigner(ctx, gun, name, { graceMs: graceMs(command, args) }, actor());
        out(s, withCertificate(s));
        return 0;
      }
      case 'rules': {
        const s = await setSignerRules(ctx, gun, name, rulesOf(command, args)!, actor());
        out(s, describe(s));
        return 0;
      }
      case 'delete': {
        const r = await deleteSigner(ctx, gun, name, actor());
        out(r, `deleted signer ${name} of ${gun} and its ${r.keyIds.length} keys`);
        return 0;
      }
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code && /^SIGNER_|^SIGN_/.test(code)) {
      console.error(`signet ${command}: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
  return 2;
}
