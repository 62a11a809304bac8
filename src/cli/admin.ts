/**
 * Administration commands of `signet`: repositories, server keys, changefeed, audit trail,
 * expiring metadata and history. Each prints text for people or, with --json, JSON for
 * scripts. Exit codes: 0 done, 1 the thing asked about is wrong or missing, 2 usage error.
 */
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config.js';
import { createLogger } from '../log.js';
import { openServices } from '../server.js';
import { deleteRepository } from '../service/delete-repository.js';
import { readChangefeed } from '../service/changefeed.js';
import { scanExpiry } from '../service/expiry.js';
import { repositoryAsOf } from '../service/history.js';
import { auditQuerySchema, readAuditTrail, type AuditQuery } from '../service/audit-query.js';
import { NotFoundError } from '../service/errors.js';
import { currentChain, loadRepositoryState, reachableTargetsRoles } from '../service/repository-state.js';
import { rotateServerKey } from '../service/server-keys.js';
import type { ServiceContext } from '../service/context.js';
import { readSigned, rootSchema } from '../tuf/notary/metadata.js';
import { parseRfc3339 } from '../tuf/core/time.js';
import { parseCommand, UsageError, type Args, type CommandSpec } from './args.js';
import { REKEY_USAGE, rekeyCommand } from './rekey.js';
import { checkSignerUsage, SIGNER_SPECS, signersCommand } from './signers-command.js';

export const ADMIN_USAGE = `  repos list [--json]                      repositories with file counts and last change
  repos show GUN [--json]                  current roles, versions and expiries, server keys
  repos delete GUN --yes                   delete a repository's metadata (keys are kept)
  keys list [--gun GUN] [--json]           server-held keys and whether the current root lists them
  keys rotate GUN timestamp|snapshot [--json]
                                           create the next server key of an existing repository; the
                                           owner then publishes a root listing it
                                           (notary key rotate GUN timestamp -r does both)
  keys rekey --new-key-file FILE [--old-key-file FILE]... [--json]
                                           re-encrypt every server key under a new key-encryption key
  changefeed tail [--gun GUN] [--records N] [--follow] [--json]
  audit [--gun GUN] [--since TIME] [--until TIME] [--limit N] [--json]
  expiring [--within SECONDS] [--json]     client-signed roles expiring soon (default window
                                           SIGNET_EXPIRY_WARNING_WINDOW; exit 1 if any)
  history GUN [--at TIME | --timestamp-version N] [--json]`;

const EXIT = 'Exit status: 0 done, 1 the repository (or what was asked about) is missing or wrong, 2 usage error.';
const JSON_OPT = { json: { type: 'boolean' } } as const;
const GUN_OPT = { gun: { type: 'string' } } as const;

const SPECS: Record<string, CommandSpec> = {
  'repos list': {
    name: 'repos list',
    usage: `usage: signet repos list [--json]\n\nEvery repository with its number of stored files and the time of its last change.\n--json  print JSON\n\n${EXIT}`,
    options: JSON_OPT,
  },
  'repos show': {
    name: 'repos show',
    usage: `usage: signet repos show GUN [--json]\n\nThe repository's current roles (timestamp, snapshot, root, targets and the delegations\ntargets reaches) with versions and expiries, and its server-held keys.\n--json  print JSON\n\n${EXIT}`,
    options: JSON_OPT,
    positionals: ['GUN'],
  },
  'repos delete': {
    name: 'repos delete',
    usage: `usage: signet repos delete GUN --yes [--json]\n\nDelete every version of the repository's metadata; its server keys are kept.\n--yes   confirm (without it, asks on a terminal and refuses otherwise)\n--json  print JSON\n\n${EXIT}`,
    options: { ...JSON_OPT, yes: { type: 'boolean' } },
    positionals: ['GUN'],
  },
  'keys list': {
    name: 'keys list',
    usage: `usage: signet keys list [--gun GUN] [--json]\n\nServer-held keys: repository, role, key ID, type, and used or pending.\n--gun GUN  only this repository's keys\n--json     print JSON\n\n${EXIT}`,
    options: { ...JSON_OPT, ...GUN_OPT },
  },
  'keys rotate': {
    name: 'keys rotate',
    usage: `usage: signet keys rotate GUN timestamp|snapshot [--json]\n\nCreate the next server-held key of an existing repository (or show the one already pending).\nIt takes effect when the owner publishes a root listing it: notary key rotate GUN timestamp -r.\nA repository with no published metadata is refused (clients fetch keys for a new repository\nthemselves before their first publish).\n--json  print JSON\n\n${EXIT}`,
    options: JSON_OPT,
    positionals: ['GUN', 'ROLE'],
  },
  'keys rekey': {
    name: 'keys rekey',
    usage: REKEY_USAGE,
    options: { ...JSON_OPT, 'new-key-file': { type: 'string' }, 'old-key-file': { type: 'string', multiple: true } },
  },
  'changefeed tail': {
    name: 'changefeed tail',
    usage: `usage: signet changefeed tail [--gun GUN] [--records N] [--follow] [--json]\n\nThe newest changefeed records, oldest first.\n--gun GUN    only this repository's changes\n--records N  how many (default 20)\n--follow     keep printing new records\n--json       one JSON object a line\n\n${EXIT}`,
    options: { ...JSON_OPT, ...GUN_OPT, records: { type: 'string' }, follow: { type: 'boolean' } },
  },
  audit: {
    name: 'audit',
    usage: `usage: signet audit [--gun GUN] [--signer NAME] [--since TIME] [--until TIME] [--limit N] [--json]\n\nThe audit trail, newest first, as GET /_signet/audit answers it.\n--gun GUN     only this repository\n--signer NAME only records about server-held signer NAME (every signing call, allowed or refused)\n--since TIME  from this RFC 3339 time, e.g. 2026-11-23T08:00:00Z\n--until TIME  up to this time\n--limit N     at most N records, 1 to 1000 (default 100)\n--json        print JSON\n\n${EXIT}`,
    options: { ...JSON_OPT, ...GUN_OPT, signer: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' } },
  },
  ...SIGNER_SPECS,
  expiring: {
    name: 'expiring',
    usage: `usage: signet expiring [--within SECONDS] [--json]\n\nClient-signed roles that expire within SECONDS (default SIGNET_EXPIRY_WARNING_WINDOW) or have.\n--json  print JSON\n\nExit status: 0 none, 1 some are expiring or expired, 2 usage error.`,
    options: { ...JSON_OPT, within: { type: 'string' } },
  },
  history: {
    name: 'history',
    usage: `usage: signet history GUN [--at TIME | --timestamp-version N] [--json]\n\nThe repository as it was at a time (RFC 3339) or at a timestamp version (default: now).\n--json  print JSON\n\n${EXIT}`,
    options: { ...JSON_OPT, at: { type: 'string' }, 'timestamp-version': { type: 'string' } },
    positionals: ['GUN'],
  },
};

const SUBCOMMANDS: Record<string, string[] | null> = {
  repos: ['list', 'show', 'delete'],
  keys: ['list', 'rotate', 'rekey'],
  changefeed: ['tail'],
  signers: ['create', 'list', 'show', 'disable', 'enable', 'rotate', 'rules', 'delete'],
  audit: null,
  expiring: null,
  history: null,
};

function groupSpec(command: string, subs: string[]): CommandSpec {
  const lines = ADMIN_USAGE.split('\n');
  // The lines of ADMIN_USAGE for this command, with their continuation lines.
  const own: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^ {2}\S/.test(line)) inside = line.startsWith(`  ${command} `);
    if (inside) own.push(line);
  }
  return {
    name: command,
    usage: `usage: signet ${command} ${subs.join('|')} …\n\n${own.join('\n')}\n\nsignet ${command} SUBCOMMAND --help describes each.`,
    positionals: ['SUBCOMMAND?'],
  };
}

interface Parsed {
  spec: CommandSpec;
  sub: string | undefined;
  args: Args;
}

/** Read and check the arguments of an admin command; null when --help or --version was answered. */
function parse(command: string, argv: string[]): Parsed | null {
  const subs = SUBCOMMANDS[command]!;
  if (!subs) {
    const spec = SPECS[command]!;
    const args = parseCommand(spec, argv);
    return args && { spec, sub: undefined, args };
  }
  const [sub, ...rest] = argv;
  if (sub === undefined || !subs.includes(sub)) {
    const group = groupSpec(command, subs);
    const args = parseCommand(group, argv);
    if (!args) return null;
    const named = args.positionals[0];
    throw new UsageError(
      named === undefined ? `expected one of ${subs.join(', ')}` : `unknown subcommand ${JSON.stringify(named)}, expected one of ${subs.join(', ')}`,
      command,
    );
  }
  const spec = SPECS[`${command} ${sub}`]!;
  const args = parseCommand(spec, rest);
  return args && { spec, sub, args };
}

function int(a: Parsed, name: string, fallback: number, min = 0): number {
  const v = a.args.string(name);
  if (v === undefined) return fallback;
  if (!/^-?\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`--${name} must be a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}`, a.spec.name);
  return Number(v);
}
function time(a: Parsed, name: string): Date | undefined {
  const v = a.args.string(name);
  if (v === undefined) return undefined;
  const ms = parseRfc3339(v);
  if (ms === null) throw new UsageError(`--${name} must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z`, a.spec.name);
  return new Date(ms);
}
function auditQuery(a: Parsed): AuditQuery {
  const input = Object.fromEntries(
    ['gun', 'signer', 'since', 'until', 'limit'].flatMap((n) => (a.args.string(n) === undefined ? [] : [[n, a.args.string(n)]])),
  );
  const q = auditQuerySchema.safeParse(input);
  if (!q.success) throw new UsageError(q.error.issues.map((i) => `--${i.path.join('.')} ${i.message}`).join('; '), a.spec.name);
  return q.data;
}
const print = (a: Parsed, value: unknown, human: () => void) => (a.args.flag('json') ? console.log(JSON.stringify(value, null, 2)) : human());

/** Run an admin command; null if `command` is not one. */
export async function runAdminCommand(command: string, argv: string[], loadConfig: () => Config): Promise<number | null> {
  if (!(command in SUBCOMMANDS)) return null;
  const parsed = parse(command, argv);
  if (!parsed) return 0;
  checkUsage(parsed); // before any connection: a usage mistake is exit 2 whatever the database does
  const config = loadConfig();
  // Re-keying opens the store itself: it must run where the KEK check at start would refuse.
  if (parsed.spec.name === 'keys rekey') return rekeyCommand(config, parsed.args);
  const { database, context, listener } = await openServices(config, createLogger('error'));
  try {
    return await dispatch(command, parsed, context, config);
  } finally {
    await listener?.close();
    await database.close();
  }
}

/** Every argument mistake that parsing alone does not find and that needs no database. */
function checkUsage(a: Parsed): void {
  if (a.spec.name === 'keys rotate' && a.args.positionals[1] !== 'timestamp' && a.args.positionals[1] !== 'snapshot') {
    throw new UsageError('role must be timestamp or snapshot', a.spec.name);
  }
  if (a.spec.name === 'keys rekey' && !a.args.string('new-key-file')) throw new UsageError('--new-key-file is required', a.spec.name);
  if (a.spec.name === 'audit') auditQuery(a);
  if (a.spec.name.startsWith('signers ')) checkSignerUsage(a.spec.name, a.args);
  if (a.spec.name === 'changefeed tail') int(a, 'records', 20, 1);
  if (a.spec.name === 'expiring') int(a, 'within', 0);
  if (a.spec.name === 'history') {
    // As over HTTP: two points in time contradict each other; neither silently wins.
    if (a.args.string('at') !== undefined && a.args.string('timestamp-version') !== undefined) {
      throw new UsageError('give either --at or --timestamp-version, not both', a.spec.name);
    }
    int(a, 'timestamp-version', 1, 1);
    time(a, 'at');
  }
}

async function dispatch(command: string, a: Parsed, ctx: ServiceContext, config: Config): Promise<number> {
  const { metadata, serverKeys } = ctx.stores;
  const { sub } = a;
  // Parsing has checked that the positionals each command needs are there.
  const [first, second] = a.args.positionals as [string, string];
  switch (command) {
    case 'repos': {
      if (sub === 'list') {
        const repos = (await metadata.repositorySummaries()).map((r) => ({ gun: r.gun, files: r.files, lastChange: r.lastChange.toISOString() }));
        print(a, repos, () => {
          for (const r of repos) console.log(`${r.gun}\t${r.files} files\tlast change ${r.lastChange}`);
          console.log(`${repos.length} repositories`);
        });
        return 0;
      }
      if (sub === 'show') {
        const gun = first;
        const state = await loadRepositoryState(metadata, ctx.cache, gun);
        const chain = await currentChain(metadata, ctx.cache, gun);
        if (!chain || !state.root) {
          console.error(`no repository ${gun}`);
          return 1;
        }
        const files = [chain.timestamp.file, ...(chain.snapshot ? [chain.snapshot.file] : []), state.root, ...reachableTargetsRoles(state)].map((f) => ({
          role: f.role,
          version: f.version,
          expires: f.signed.expires,
          expired: f.isExpired(Date.now()),
        }));
        const root = readSigned(rootSchema, state.root);
        const listed = new Set(root.ok ? [...(root.value.roles['timestamp']?.keyids ?? []), ...(root.value.roles['snapshot']?.keyids ?? [])] : []);
        const keys = (await serverKeys.ofRepository(gun)).map((k) => ({
          keyId: k.keyId,
          role: k.role,
          keytype: k.keytype,
          inCurrentRoot: listed.has(k.keyId),
          created: k.createdAt.toISOString(),
          lastUsed: k.lastUsed?.toISOString() ?? null,
        }));
        print(a, { gun, files, keys }, () => {
          for (const f of files) console.log(`${f.role.padEnd(24)} v${String(f.version).padEnd(6)} expires ${f.expires}${f.expired ? '  EXPIRED' : ''}`);
          for (const k of keys) console.log(`server ${k.role} key ${k.keyId.slice(0, 16)}… ${k.keytype}${k.inCurrentRoot ? ' (in current root)' : ''}`);
        });
        return 0;
      }
      if (sub === 'delete') {
        const gun = first;
        if (!a.args.flag('yes')) {
          if (!process.stdin.isTTY) throw new UsageError('pass --yes to confirm', a.spec.name);
          const rl = createInterface({ input: process.stdin, output: process.stdout });
          const answer = await rl.question(`Delete all metadata of ${gun}? Type the name to confirm: `);
          rl.close();
          if (answer.trim() !== gun) {
            console.error('not confirmed; nothing deleted');
            return 1;
          }
        }
        const deleted = await deleteRepository(ctx, gun, { subject: `cli:${process.env['USER'] ?? 'admin'}` });
        print(a, { gun, deleted }, () => console.log(deleted ? `deleted ${deleted} files of ${gun}` : `no repository ${gun}`));
        return deleted ? 0 : 1;
      }
      break;
    }
    case 'keys': {
      if (sub === 'list') {
        const gun = a.args.string('gun');
        const keys = (await serverKeys.list(gun)).map((k) => ({
          keyId: k.keyId,
          gun: k.gun,
          role: k.role,
          keytype: k.keytype,
          created: k.createdAt.toISOString(),
          lastUsed: k.lastUsed?.toISOString() ?? null,
        }));
        print(a, keys, () => {
          for (const k of keys) console.log(`${k.gun}\t${k.role}\t${k.keyId}\t${k.keytype}\t${k.lastUsed ? 'used' : 'pending'}`);
          console.log(`${keys.length} keys`);
        });
        return 0;
      }
      if (sub === 'rotate') {
        const gun = first;
        const role = second as 'timestamp' | 'snapshot';
        let key;
        try {
          key = await rotateServerKey(ctx, gun, role, { subject: `cli:${process.env['USER'] ?? 'admin'}` }, { existingOnly: true });
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
          console.error(
            `no repository ${gun}: nothing is published under this name, so no key was created (check the name; a new repository's owner gets its keys with its first notary publish)`,
          );
          return 1;
        }
        print(a, key, () => {
          console.log(`new ${role} key for ${gun}: ${key.keyId} (${key.keytype})`);
          console.log(`It takes effect when the repository owner publishes a root listing it, e.g. notary key rotate ${gun} ${role} -r`);
        });
        return 0;
      }
      break;
    }
    case 'changefeed': {
      const gun = a.args.string('gun') ?? null;
      const page = await readChangefeed(ctx, gun, '-1', String(-int(a, 'records', 20, 1)));
      let last = page.records?.at(-1)?.ID ?? '0';
      const show = (records: typeof page.records) => {
        for (const r of records ?? []) {
          if (a.args.flag('json')) console.log(JSON.stringify(r));
          else console.log(`${r.ID}\t${r.CreatedAt}\t${r.Category}\t${r.GUN}\tv${r.Version}\t${r.SHA256}`);
        }
      };
      show(page.records);
      while (a.args.flag('follow')) {
        await new Promise((r) => setTimeout(r, 1000));
        const next = await readChangefeed(ctx, gun, last, '100');
        show(next.records);
        last = next.records?.at(-1)?.ID ?? last;
      }
      return 0;
    }
    case 'signers':
      return signersCommand(sub!, a.args, ctx);
    case 'audit': {
      const records = await readAuditTrail(ctx, auditQuery(a));
      print(a, records, () => {
        for (const r of records) console.log(`${r.time}\t${r.action}\t${r.gun}\t${r.subject}\t${r.address ?? '-'}\t${JSON.stringify(r.detail)}`);
      });
      return 0;
    }
    case 'expiring': {
      const scan = await scanExpiry(ctx, { windowMs: int(a, 'within', config.SIGNET_EXPIRY_WARNING_WINDOW) * 1000 });
      print(a, scan.expiring, () => {
        for (const r of scan.expiring) console.log(`${r.expired ? 'EXPIRED ' : 'expiring'}\t${r.gun}\t${r.role}\tv${r.version}\t${r.expires}`);
        console.log(`${scan.expiring.length} roles expiring in ${scan.repositories} repositories`);
      });
      return scan.expiring.length > 0 ? 1 : 0;
    }
    case 'history': {
      const gun = first;
      const v = a.args.string('timestamp-version');
      const at = await repositoryAsOf(ctx, gun, { at: time(a, 'at'), timestampVersion: v === undefined ? undefined : int(a, 'timestamp-version', 1, 1) }).catch(
        () => null,
      );
      if (!at) {
        console.error(`no history of ${gun} at that point`);
        return 1;
      }
      print(a, at, () => {
        console.log(`${gun} as of ${at.asOf}`);
        for (const f of [at.timestamp, ...(at.snapshot ? [at.snapshot] : []), ...at.roles]) {
          console.log(`${f.role.padEnd(24)} v${String(f.version).padEnd(6)} ${f.sha256}  stored ${f.storedAt}  expires ${f.expires}`);
        }
      });
      return 0;
    }
  }
  return 2; // unreachable: parse() admits only the subcommands handled above
}
