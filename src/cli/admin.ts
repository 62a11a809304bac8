/**
 * Administration commands of `signet`: repositories, server keys, changefeed, audit trail,
 * expiring metadata and history. Each prints text for people or, with --json, JSON for
 * scripts. Exit codes: 0 done, 1 the thing asked about is wrong or missing, 2 usage error.
 */
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { createLogger } from '../log.js';
import { openServices } from '../server.js';
import { deleteRepository } from '../service/delete-repository.js';
import { readChangefeed } from '../service/changefeed.js';
import { scanExpiry } from '../service/expiry.js';
import { repositoryAsOf } from '../service/history.js';
import { currentChain, loadRepositoryState } from '../service/repository-state.js';
import { rotateServerKey } from '../service/server-keys.js';
import type { ServiceContext } from '../service/context.js';
import { readAudit } from '../storage/audit-store.js';
import { keysOfRepository } from '../storage/server-key-store.js';
import { readSigned, rootSchema } from '../tuf/metadata.js';
import { parseRfc3339 } from '../tuf/time.js';
import { rekeyCommand } from './rekey.js';

export const ADMIN_USAGE = `  repos list [--json]                      repositories with file counts and last change
  repos show GUN [--json]                  current roles, versions and expiries, server keys
  repos delete GUN --yes                   delete a repository's metadata (keys are kept)
  keys list [--gun GUN] [--json]           server-held keys and whether the current root lists them
  keys rotate GUN timestamp|snapshot [--json]
                                           create the next server key; the owner then publishes a root
                                           listing it (notary key rotate GUN timestamp -r does both)
  keys rekey --new-key-file FILE [--old-key-file FILE]... [--json]
                                           re-encrypt every server key under a new key-encryption key
  changefeed tail [--gun GUN] [--records N] [--follow] [--json]
  audit [--gun GUN] [--since TIME] [--until TIME] [--limit N] [--json]
  expiring [--within SECONDS] [--json]     client-signed roles expiring soon (default window
                                           SIGNET_EXPIRY_WARNING_WINDOW; exit 1 if any)
  history GUN [--at TIME | --timestamp-version N] [--json]`;

interface Args {
  positional: string[];
  flags: Map<string, string | true>;
}

const BOOLEAN_FLAGS = new Set(['json', 'yes', 'follow']);

function parseArgs(args: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const name = a.slice(2);
    if (BOOLEAN_FLAGS.has(name)) flags.set(name, true);
    else {
      const value = args[++i];
      if (value === undefined) throw new ConfigError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  return { positional, flags };
}

const text = (a: Args, name: string) => {
  const v = a.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};
function int(a: Args, name: string, fallback: number): number {
  const v = text(a, name);
  if (v === undefined) return fallback;
  if (!/^-?\d+$/.test(v)) throw new ConfigError(`--${name} must be a whole number`);
  return Number(v);
}
function time(a: Args, name: string): Date | undefined {
  const v = text(a, name);
  if (v === undefined) return undefined;
  const ms = parseRfc3339(v);
  if (ms === null) throw new ConfigError(`--${name} must be an RFC 3339 time, e.g. 2026-11-23T08:00:00Z`);
  return new Date(ms);
}
const print = (a: Args, value: unknown, human: () => void) => (a.flags.has('json') ? console.log(JSON.stringify(value, null, 2)) : human());

const COMMANDS = new Set(['repos', 'keys', 'changefeed', 'audit', 'expiring', 'history']);

/** Run an admin command; null if `command` is not one. */
export async function runAdminCommand(command: string, argv: string[], config: Config): Promise<number | null> {
  if (!COMMANDS.has(command)) return null;
  if (command === 'keys' && argv[0] === 'rekey') return rekeyCommand(config, argv.slice(1));
  const args = parseArgs(argv);
  checkUsage(command, args); // before any connection: a usage mistake is exit 2 whatever the database does
  const { database, context, listener } = await openServices(config, createLogger('error'));
  try {
    return await dispatch(command, args, context, config);
  } finally {
    await listener?.close();
    await database.close();
  }
}

const SUBCOMMANDS: Record<string, string[] | null> = {
  repos: ['list', 'show', 'delete'],
  keys: ['list', 'rotate'],
  changefeed: ['tail'],
  audit: null,
  expiring: null,
  history: null,
};

/** Every argument mistake that can be found without the database. Throws ConfigError. */
function checkUsage(command: string, a: Args): void {
  const [sub, gun, role] = a.positional;
  const subs = SUBCOMMANDS[command];
  if (subs && (!sub || !subs.includes(sub))) throw new ConfigError(`${command}: expected one of ${subs.join(', ')}`);
  if ((command === 'repos' && (sub === 'show' || sub === 'delete')) || (command === 'keys' && sub === 'rotate')) {
    if (!gun) throw new ConfigError(`${command} ${sub}: missing GUN`);
  }
  if (command === 'keys' && sub === 'rotate' && role !== 'timestamp' && role !== 'snapshot') {
    throw new ConfigError('keys rotate: role must be timestamp or snapshot');
  }
  if (command === 'history' && !sub) throw new ConfigError('history: missing GUN');
  for (const name of ['records', 'limit', 'within', 'timestamp-version']) int(a, name, 0);
  for (const name of ['since', 'until', 'at']) time(a, name);
}

async function dispatch(command: string, a: Args, ctx: ServiceContext, config: Config): Promise<number> {
  const db = ctx.database.db;
  const [sub, gunArg, roleArg] = a.positional;
  const need = (v: string | undefined, what: string) => {
    if (!v) throw new ConfigError(`${command}${sub ? ' ' + sub : ''}: missing ${what}`);
    return v;
  };
  switch (command) {
    case 'repos': {
      if (sub === 'list') {
        const rows = await db
          .selectFrom('tuf_files')
          .select(['gun', (eb) => eb.fn.countAll<string>().as('files'), (eb) => eb.fn.max('created_at').as('changed')])
          .groupBy('gun')
          .orderBy('gun')
          .execute();
        const repos = rows.map((r) => ({ gun: r.gun, files: Number(r.files), lastChange: new Date(r.changed as unknown as string).toISOString() }));
        print(a, repos, () => {
          for (const r of repos) console.log(`${r.gun}\t${r.files} files\tlast change ${r.lastChange}`);
          console.log(`${repos.length} repositories`);
        });
        return 0;
      }
      if (sub === 'show') {
        const gun = need(gunArg, 'GUN');
        const state = await loadRepositoryState(db, ctx.cache, gun);
        const chain = await currentChain(db, ctx.cache, gun);
        if (!chain || !state.root) {
          console.error(`no repository ${gun}`);
          return 1;
        }
        const files = [chain.timestamp.file, ...(chain.snapshot ? [chain.snapshot.file] : []), state.root, ...state.targets.values()].map((f) => ({
          role: f.role,
          version: f.version,
          expires: f.signed.expires,
          expired: f.isExpired(Date.now()),
        }));
        const root = readSigned(rootSchema, state.root);
        const listed = new Set(root.ok ? [...(root.value.roles['timestamp']?.keyids ?? []), ...(root.value.roles['snapshot']?.keyids ?? [])] : []);
        const keys = (await keysOfRepository(db, gun)).map((k) => ({ keyId: k.keyId, role: k.role, keytype: k.keytype, inCurrentRoot: listed.has(k.keyId), created: k.createdAt.toISOString(), lastUsed: k.lastUsed?.toISOString() ?? null }));
        print(a, { gun, files, keys }, () => {
          for (const f of files) console.log(`${f.role.padEnd(24)} v${String(f.version).padEnd(6)} expires ${f.expires}${f.expired ? '  EXPIRED' : ''}`);
          for (const k of keys) console.log(`server ${k.role} key ${k.keyId.slice(0, 16)}… ${k.keytype}${k.inCurrentRoot ? ' (in current root)' : ''}`);
        });
        return 0;
      }
      if (sub === 'delete') {
        const gun = need(gunArg, 'GUN');
        if (!a.flags.has('yes')) {
          if (!process.stdin.isTTY) throw new ConfigError('repos delete: pass --yes to confirm');
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
      throw new ConfigError('repos: list, show GUN or delete GUN --yes');
    }
    case 'keys': {
      if (sub === 'list') {
        const gun = text(a, 'gun');
        let q = db.selectFrom('server_keys').select(['key_id', 'gun', 'role', 'keytype', 'created_at', 'last_used']).orderBy('gun').orderBy('created_at');
        if (gun) q = q.where('gun', '=', gun);
        const keys = (await q.execute()).map((k) => ({ keyId: k.key_id.trim(), gun: k.gun, role: k.role, keytype: k.keytype, created: k.created_at.toISOString(), lastUsed: k.last_used?.toISOString() ?? null }));
        print(a, keys, () => {
          for (const k of keys) console.log(`${k.gun}\t${k.role}\t${k.keyId}\t${k.keytype}\t${k.lastUsed ? 'used' : 'pending'}`);
          console.log(`${keys.length} keys`);
        });
        return 0;
      }
      if (sub === 'rotate') {
        const gun = need(gunArg, 'GUN');
        const role = need(roleArg, 'role (timestamp or snapshot)');
        if (role !== 'timestamp' && role !== 'snapshot') throw new ConfigError('keys rotate: role must be timestamp or snapshot');
        const key = await rotateServerKey(ctx, gun, role, { subject: `cli:${process.env['USER'] ?? 'admin'}` });
        print(a, key, () => {
          console.log(`new ${role} key for ${gun}: ${key.keyId} (${key.keytype})`);
          console.log(`It takes effect when the repository owner publishes a root listing it, e.g. notary key rotate ${gun} ${role} -r`);
        });
        return 0;
      }
      throw new ConfigError('keys: list [--gun GUN] or rotate GUN timestamp|snapshot');
    }
    case 'changefeed': {
      if (sub !== 'tail') throw new ConfigError('changefeed: tail [--gun GUN] [--records N] [--follow]');
      const gun = text(a, 'gun') ?? null;
      const page = await readChangefeed(ctx, gun, '-1', String(-Math.abs(int(a, 'records', 20))));
      let last = page.records?.at(-1)?.ID ?? '0';
      const show = (records: typeof page.records) => {
        for (const r of records ?? []) {
          if (a.flags.has('json')) console.log(JSON.stringify(r));
          else console.log(`${r.ID}\t${r.CreatedAt}\t${r.Category}\t${r.GUN}\tv${r.Version}\t${r.SHA256}`);
        }
      };
      show(page.records);
      while (a.flags.has('follow')) {
        await new Promise((r) => setTimeout(r, 1000));
        const next = await readChangefeed(ctx, gun, last, '100');
        show(next.records);
        last = next.records?.at(-1)?.ID ?? last;
      }
      return 0;
    }
    case 'audit': {
      const records = await readAudit(db, { gun: text(a, 'gun'), since: time(a, 'since'), until: time(a, 'until'), limit: Math.min(Math.max(int(a, 'limit', 100), 1), 10_000) });
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
      const gun = need(sub, 'GUN');
      const v = text(a, 'timestamp-version');
      const at = await repositoryAsOf(ctx, gun, { at: time(a, 'at'), timestampVersion: v === undefined ? undefined : int(a, 'timestamp-version', 1) }).catch(() => null);
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
  return 2;
}
