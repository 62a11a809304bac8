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
import {
  newestRootTimestampKeys,
  passphraseEnvName,
  prepareKeys,
  presentFiles,
  problemOf,
  SERVER_KEY_ROLES,
  type ImportOptions,
  type ImportTarget,
  type Prepared,
} from './plan.js';
import { emptyReport, sortProblems, type ImportReport } from './report.js';
import type { SourceKeyInfo } from './source.js';
import { checkRepositoryFiles } from './verify.js';
import { importChangefeed, writeRepository, type Outcome } from './writer.js';

export { passphraseEnvName, type ImportOptions, type ImportTarget } from './plan.js';
export type { FileProblem, ImportProgress, ImportReport, KeyProblem } from './report.js';

export async function runImport(options: ImportOptions, target: ImportTarget): Promise<ImportReport> {
  const started = Date.now();
  const { ctx } = target;
  const report: ImportReport = emptyReport(options.dryRun, Boolean(options.signer));

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
  sortProblems(report);

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
