/**
 * `signet import`: copy a notary deployment (notary-server's metadata history and changefeed,
 * notary-signer's server-held keys) into Signet's database, so that clients carry on without
 * anyone re-signing.
 *
 * - Every file is checked first (verify.ts); refused files are skipped and reported.
 * - Each repository is written in one transaction under its repository lock, so a running
 *   Signet sees all of it or none of it, and a change notification drops other processes' caches.
 * - Idempotent and resumable: a row already present with the same bytes is skipped. A row
 *   present with other bytes is a conflict: that repository is left untouched (files and keys),
 *   because two diverged histories cannot be merged file by file.
 * - The changefeed is copied last, in notary's id order with notary's times; into an empty
 *   changefeed the change IDs are kept, so changefeed readers can resume where they were.
 */
import { VerifierKeyCache } from '../tuf/notary/role-keys.js';
import { withRepositoryLock, type ServiceContext } from '../service/context.js';
import { keyAssociatedData } from '../signing/key-service.js';
import type { KeyEncryptionKey } from '../signing/key-encryption.js';
import type { Stores } from '../storage/stores.js';
import { tufKeyId } from '../tuf/core/keys.js';
import { readSigned, rootSchema, parseSignedFile } from '../tuf/notary/metadata.js';
import { JweDecryptionError, JweError, decryptPbes2Jwe } from './jwe.js';
import { PrivateKeyError, notaryPrivateKeyToPkcs8 } from './private-key.js';
import type { ServerSource, SignerSource, SourceKey, SourceKeyInfo } from './source.js';
import { checkRepositoryFiles, type CheckedFile } from './verify.js';

export interface ImportOptions {
  server: ServerSource;
  signer?: SignerSource | undefined;
  /** The passphrase of a notary-signer alias, if known. */
  passphrase: (alias: string) => string | undefined;
  gun?: string | undefined;
  dryRun: boolean;
  /** Where the data came from, for the audit log (no credentials): `host:port/database`. */
  sourceLabel?: string | undefined;
  /** Repositories checked and written at the same time (default 4). */
  concurrency?: number | undefined;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ImportTarget {
  ctx: ServiceContext;
  kek: KeyEncryptionKey;
}

export interface ImportProgress {
  repositoriesDone: number;
  repositoriesTotal: number;
  filesImported: number;
  filesExisting: number;
  filesRefused: number;
  conflicts: number;
}

export interface FileProblem {
  gun: string;
  role: string;
  version: number;
  reason: string;
}

export interface KeyProblem {
  gun: string;
  role: string;
  keyId: string;
  alias: string;
  reason: string;
}

export interface ImportReport {
  dryRun: boolean;
  repositories: { total: number; imported: number; upToDate: number; conflicted: number };
  files: { source: number; imported: number; existing: number; refused: number; unverified: number };
  changefeed: { source: number; imported: number; existing: number; skipped: number; idsPreserved: boolean | null };
  keys: {
    source: number;
    imported: number;
    existing: number;
    failed: number;
    skippedRole: number;
    /** false when no --signer was given. */
    read: boolean;
  };
  refused: FileProblem[];
  unverified: FileProblem[];
  conflicts: (FileProblem | (KeyProblem & { kind: 'key' }))[];
  keyProblems: KeyProblem[];
  missingPassphrases: { alias: string; env: string; keys: number }[];
  /** Imported repositories whose newest root lists a timestamp key Signet does not hold. */
  withoutTimestampKey: string[];
  notes: string[];
  elapsedMs: number;
  filesPerSecond: number;
}

/** notary-signer reads the passphrase of alias X from env NOTARY_SIGNER_<X upper-cased, . → _>. */
export function passphraseEnvName(alias: string): string {
  return `NOTARY_SIGNER_${alias.toUpperCase().replace(/\./g, '_')}`;
}

const SERVER_KEY_ROLES = new Set(['timestamp', 'snapshot']);
const CHANGE_CATEGORIES = new Set(['update', 'deletion']);
/** Written for a null notary time, so that re-runs recognise the row. */
const UNKNOWN_TIME = '1970-01-01T00:00:00.000000Z';

interface PreparedKey {
  keyId: string;
  gun: string;
  role: 'timestamp' | 'snapshot';
  keytype: string;
  publicKey: string;
  sealed: Buffer;
  kekId: string;
  createdAt: string | null;
  lastUsed: string | null;
  alias: string;
}

interface Prepared {
  gun: string;
  checked: CheckedFile[];
  keys: PreparedKey[];
  /** Timestamp key IDs of the newest accepted root, if any. */
  timestampKeyIds: string[] | null;
}

class Rollback extends Error {}

export async function runImport(options: ImportOptions, target: ImportTarget): Promise<ImportReport> {
  const started = Date.now();
  const { ctx } = target;
  const report: ImportReport = {
    dryRun: options.dryRun,
    repositories: { total: 0, imported: 0, upToDate: 0, conflicted: 0 },
    files: { source: 0, imported: 0, existing: 0, refused: 0, unverified: 0 },
    changefeed: { source: 0, imported: 0, existing: 0, skipped: 0, idsPreserved: null },
    keys: { source: 0, imported: 0, existing: 0, failed: 0, skippedRole: 0, read: Boolean(options.signer) },
    refused: [],
    unverified: [],
    conflicts: [],
    keyProblems: [],
    missingPassphrases: [],
    withoutTimestampKey: [],
    notes: [],
    elapsedMs: 0,
    filesPerSecond: 0,
  };

  const fileRepos = await options.server.repositories(options.gun);
  const softDeleted = await options.server.softDeletedRows(options.gun);
  if (softDeleted > 0) report.notes.push(`${softDeleted} soft-deleted tuf_files rows (deleted_at set) were ignored, as notary ignores them`);
  if (!options.server.hasChangefeed) report.notes.push('the source has no changefeed table: no change records were copied');

  const keyInfos = options.signer ? await options.signer.keyInfos(options.gun) : [];
  report.keys.source = keyInfos.length;
  const keysByGun = new Map<string, SourceKeyInfo[]>();
  const keyGuns = new Set(keyInfos.filter((k) => SERVER_KEY_ROLES.has(k.role)).map((k) => k.gun));
  const missing = new Map<string, number>();
  const alreadyHeld = new Map((await ctx.stores.serverKeys.byIds(keyInfos.map((k) => k.keyId))).map((k) => [k.keyId, k]));
  for (const info of keyInfos) {
    if (!SERVER_KEY_ROLES.has(info.role)) {
      report.keys.skippedRole++;
      report.keyProblems.push({ ...problemOf(info), reason: `role ${info.role}: Signet holds only timestamp and snapshot keys (skipped)` });
      continue;
    }
    const held = alreadyHeld.get(info.keyId);
    if (held && held.gun === info.gun && held.role === info.role) {
      // Imported before (the ID is the hash of the public key): no passphrase needed.
      report.keys.existing++;
      continue;
    }
    if (!options.passphrase(info.alias)) {
      missing.set(info.alias, (missing.get(info.alias) ?? 0) + 1);
      report.keys.failed++;
      report.keyProblems.push({
        ...problemOf(info),
        reason: `no passphrase for alias ${info.alias} (--passphrase ${info.alias}=… or ${passphraseEnvName(info.alias)})`,
      });
      continue;
    }
    const list = keysByGun.get(info.gun) ?? [];
    list.push(info);
    keysByGun.set(info.gun, list);
  }
  report.missingPassphrases = [...missing].map(([alias, keys]) => ({ alias, env: passphraseEnvName(alias), keys }));

  const guns = [...new Set([...fileRepos.map((r) => r.gun), ...keyGuns])].sort();
  report.repositories.total = guns.length;
  report.files.source = fileRepos.reduce((n, r) => n + r.files, 0);
  const conflicted = new Set<string>();
  // One key cache for the whole run: root and delegation keys recur across repositories.
  const keyCache = new VerifierKeyCache();

  const prepare = async (gun: string, useHints = true): Promise<Prepared> => {
    const rows = await options.server.files(gun);
    // Files Signet already holds need no checking (re-runs, resumed imports); writeRepository
    // makes sure they are still there once it holds the repository lock.
    const present = useHints ? await presentFiles(ctx.stores, gun) : new Map<string, string>();
    const checked = checkRepositoryFiles(gun, rows, {
      present: (role, version, sha) => present.get(`${role}\u0000${version}`) === sha,
      nowMs: ctx.now(),
      keyCache,
    });
    const keys = options.signer ? await prepareKeys(options.signer, keysByGun.get(gun) ?? [], options, target, report) : [];
    return { gun, checked, keys, timestampKeyIds: newestRootTimestampKeys(checked) };
  };

  // A few repositories in flight: checking is CPU work, writing waits on the database.
  let taken = 0;
  let done = 0;
  let stopped = false;
  const worker = async () => {
    while (taken < guns.length && !stopped) {
      const gun = guns[taken++]!;
      let outcome: Outcome;
      try {
        outcome = await writeRepository(ctx, await prepare(gun), options, report);
        // A file taken as present vanished meanwhile (repository deleted?): check everything.
        if (outcome === 'retry') outcome = await writeRepository(ctx, await prepare(gun, false), options, report);
        if (outcome === 'retry') throw new Error('files vanished twice while importing');
      } catch (e) {
        stopped = true; // the other workers finish their repository and stop
        throw new Error(`${gun}: ${(e as Error).message}`, { cause: e });
      }
      if (outcome === 'conflict') {
        conflicted.add(gun);
        report.repositories.conflicted++;
      } else if (outcome === 'imported') report.repositories.imported++;
      else report.repositories.upToDate++;
      options.onProgress?.({
        repositoriesDone: ++done,
        repositoriesTotal: guns.length,
        filesImported: report.files.imported,
        filesExisting: report.files.existing,
        filesRefused: report.files.refused,
        conflicts: report.conflicts.length,
      });
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(options.concurrency ?? 4, guns.length) }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  // Workers finish in any order; the report lists problems by repository.
  const byGun = (a: { gun: string }, b: { gun: string }) => (a.gun < b.gun ? -1 : a.gun > b.gun ? 1 : 0);
  for (const list of [report.refused, report.unverified, report.conflicts, report.keyProblems]) list.sort(byGun);
  report.withoutTimestampKey.sort();

  await importChangefeed(ctx.stores, options, report, conflicted);
  if (!options.signer) {
    report.notes.push(
      'no --signer given: server-held keys were not imported; publishing to an imported repository needs its timestamp key (or `notary key rotate GUN timestamp -r`)',
    );
  }
  report.elapsedMs = Date.now() - started;
  report.filesPerSecond = report.elapsedMs > 0 ? Math.round((report.files.source / report.elapsedMs) * 1000) : 0;
  return report;
}

function problemOf(info: SourceKeyInfo): Omit<KeyProblem, 'reason'> {
  return { gun: info.gun, role: info.role, keyId: info.keyId, alias: info.alias };
}

/** Timestamp key IDs of the highest-version root that was not refused. */
function newestRootTimestampKeys(checked: readonly CheckedFile[]): string[] | null {
  let best: CheckedFile | null = null;
  for (const c of checked) {
    if (c.row.role === 'root' && c.verdict !== 'refused' && (!best || c.row.version > best.row.version)) best = c;
  }
  if (!best) return null;
  try {
    const root = readSigned(rootSchema, parseSignedFile('root', best.row.data));
    return root.ok ? (root.value.roles['timestamp']?.keyids ?? []) : null;
  } catch {
    return null;
  }
}

/** Decrypt, convert, check and re-encrypt one repository's keys. */
async function prepareKeys(
  signer: SignerSource,
  infos: readonly SourceKeyInfo[],
  options: ImportOptions,
  target: ImportTarget,
  report: ImportReport,
): Promise<PreparedKey[]> {
  const rows = await signer.keys(infos.map((i) => i.id));
  const results = await Promise.all(
    rows.map(async (row): Promise<PreparedKey | null> => {
      const fail = (reason: string) => {
        report.keys.failed++;
        report.keyProblems.push({ gun: row.gun, role: row.role, keyId: row.keyId, alias: row.alias, reason });
        return null;
      };
      let plaintext: Buffer;
      try {
        plaintext = await decryptPbes2Jwe(row.privateJwe, options.passphrase(row.alias)!);
      } catch (e) {
        if (e instanceof JweDecryptionError) return fail(`cannot decrypt with the passphrase of alias ${row.alias}: ${e.message}`);
        if (e instanceof JweError) return fail(`unreadable encrypted key: ${e.message}`);
        throw e;
      }
      try {
        return convertKey(row, plaintext, target);
      } catch (e) {
        if (e instanceof PrivateKeyError) return fail(e.message);
        throw e;
      } finally {
        plaintext.fill(0);
      }
    }),
  );
  return results.filter((k): k is PreparedKey => k !== null);
}

function convertKey(row: SourceKey, plaintext: Buffer, target: ImportTarget): PreparedKey {
  const converted = notaryPrivateKeyToPkcs8(row.algorithm, plaintext);
  try {
    if (!converted.publicBytes.equals(row.publicBytes)) {
      throw new PrivateKeyError('the private key does not belong to the public key stored beside it');
    }
    const publicKey = converted.publicBytes.toString('base64');
    const keyId = tufKeyId(converted.keytype, publicKey);
    if (keyId !== row.keyId) throw new PrivateKeyError(`the key's ID is ${keyId}, not the stored ${row.keyId}`);
    const identity = { keyId, gun: row.gun, role: row.role };
    return {
      keyId,
      gun: row.gun,
      role: row.role as PreparedKey['role'],
      keytype: converted.keytype,
      publicKey,
      sealed: target.kek.encrypt(converted.pkcs8, keyAssociatedData(identity)),
      kekId: target.kek.id,
      createdAt: row.createdAt,
      lastUsed: row.lastUsed,
      alias: row.alias,
    };
  } finally {
    converted.pkcs8.fill(0);
  }
}

type Outcome = 'imported' | 'up-to-date' | 'conflict' | 'retry';

async function presentFiles(stores: Stores, gun: string): Promise<Map<string, string>> {
  return new Map((await stores.metadata.checksumsOf(gun)).map((r) => [`${r.role}\u0000${r.version}`, r.sha256]));
}

async function writeRepository(ctx: ServiceContext, prepared: Prepared, options: ImportOptions, report: ImportReport): Promise<Outcome> {
  const { gun } = prepared;
  const { dryRun } = options;
  const accepted = prepared.checked.filter((c) => c.verdict !== 'refused');

  const work = async (stores: Stores): Promise<{ outcome: Outcome; wrote: boolean }> => {
    const existing = await presentFiles(stores, gun);
    const fresh: CheckedFile[] = [];
    const conflicts: FileProblem[] = [];
    let already = 0;
    for (const c of accepted) {
      const stored = existing.get(`${c.row.role}\u0000${c.row.version}`);
      if (stored === undefined) fresh.push(c);
      else if (stored === c.sha256) already++;
      else {
        conflicts.push({
          gun,
          role: c.row.role,
          version: c.row.version,
          reason: `Signet already holds ${c.row.role} v${c.row.version} with other bytes (sha256 ${stored.slice(0, 12)}…, notary's ${c.sha256.slice(0, 12)}…)`,
        });
      }
    }
    if (fresh.some((c) => c.alreadyPresent)) return { outcome: 'retry', wrote: false };
    recordProblems();
    if (conflicts.length > 0) {
      report.conflicts.push(...conflicts);
      return { outcome: 'conflict', wrote: false };
    }
    report.files.existing += already;

    const keyIds = prepared.keys.map((k) => k.keyId);
    const held = new Map((keyIds.length ? await stores.serverKeys.byIds(keyIds) : []).map((k) => [k.keyId, k]));
    const newKeys: PreparedKey[] = [];
    for (const k of prepared.keys) {
      const h = held.get(k.keyId);
      if (!h) newKeys.push(k);
      else if (h.gun === k.gun && h.role === k.role && h.publicKey === k.publicKey) report.keys.existing++;
      else {
        report.keys.failed++;
        report.conflicts.push({
          kind: 'key',
          gun: k.gun,
          role: k.role,
          keyId: k.keyId,
          alias: k.alias,
          reason: `Signet already holds key ${k.keyId.slice(0, 12)}… for ${h.gun} ${h.role}`,
        });
      }
    }

    if (!dryRun) {
      await stores.metadata.insertImported(
        gun,
        fresh.map((c) => ({ role: c.row.role, version: c.row.version, sha256: c.sha256, data: c.row.data, createdAt: c.row.createdAt })),
      );
      await stores.serverKeys.insertImported(
        newKeys.map((k) => ({
          keyId: k.keyId,
          gun: k.gun,
          role: k.role,
          keytype: k.keytype,
          publicKey: k.publicKey,
          privateKey: k.sealed,
          kekId: k.kekId,
          createdAt: k.createdAt,
          lastUsed: k.lastUsed,
        })),
      );
      if (fresh.length + newKeys.length > 0) {
        await stores.audit.append(
          gun,
          'import',
          { subject: 'signet import' },
          {
            source: options.sourceLabel ?? 'notary',
            files: fresh.length,
            keys: newKeys.length,
          },
        );
      }
    }
    report.files.imported += fresh.length;
    report.keys.imported += newKeys.length;

    // Will Signet be able to sign this repository's next timestamp?
    if (prepared.timestampKeyIds && prepared.timestampKeyIds.length > 0) {
      const heldIds = new Set((await stores.serverKeys.list(gun)).map((k) => k.keyId));
      for (const k of newKeys) heldIds.add(k.keyId);
      if (!prepared.timestampKeyIds.some((id) => heldIds.has(id))) report.withoutTimestampKey.push(gun);
    }
    const wrote = fresh.length + newKeys.length > 0;
    return { outcome: wrote ? 'imported' : 'up-to-date', wrote };
  };

  const recordProblems = () => {
    for (const c of prepared.checked) {
      const problem = { gun, role: c.row.role, version: c.row.version, reason: c.reason ?? '' };
      if (c.verdict === 'refused') report.refused.push(problem);
      else if (c.verdict === 'unverified') report.unverified.push(problem);
    }
    report.files.refused += prepared.checked.length - accepted.length;
    report.files.unverified += prepared.checked.filter((c) => c.verdict === 'unverified').length;
  };
  // A dry run reads without the lock, as it writes nothing.
  if (dryRun) return (await work(ctx.stores)).outcome;
  // The lock publishing takes (with its in-process queue); the change is announced, and dropped
  // from this process's cache, only when something was written.
  let wrote = false;
  try {
    return await withRepositoryLock(
      ctx,
      gun,
      async (stores) => {
        const result = await work(stores);
        wrote = result.wrote;
        if (wrote) await stores.metadata.announceChange(gun);
        return result.outcome;
      },
      { changesMetadata: false },
    );
  } finally {
    if (wrote) ctx.current.invalidate(gun);
  }
}

/**
 * Copy the changefeed in notary's id order, skipping records already present (same repository,
 * version, checksum, category and time). Records of conflicted repositories are left out.
 */
async function importChangefeed(stores: Stores, options: ImportOptions, report: ImportReport, conflicted: ReadonlySet<string>): Promise<void> {
  if (!options.server.hasChangefeed) return;
  const run = async ({ changefeed }: Stores) => {
    if (!options.dryRun) await changefeed.lockForImport();
    await changefeed.startStaging();
    for await (const page of options.server.changes(options.gun)) {
      report.changefeed.source += page.length;
      const rows = page.filter((c) => {
        const keep = CHANGE_CATEGORIES.has(c.category) && !conflicted.has(c.gun);
        if (!keep) report.changefeed.skipped++;
        return keep;
      });
      await changefeed.stage(rows.map((c) => ({ ...c, createdAt: c.createdAt ?? UNKNOWN_TIME })));
    }
    report.changefeed.existing = await changefeed.dropStagedDuplicates();
    const span = await changefeed.stagedSpan();
    if (span.count === 0) return;
    report.changefeed.imported = span.count;
    report.changefeed.idsPreserved = Number(span.lowestId) > (await changefeed.highestIdUsed());
    if (options.dryRun) return;
    await changefeed.appendStaged(report.changefeed.idsPreserved, span.highestId!);
  };
  try {
    await stores.transaction(async (trx) => {
      await run(trx);
      if (options.dryRun) throw new Rollback();
    });
  } catch (e) {
    if (!(e instanceof Rollback)) throw e;
  }
}
