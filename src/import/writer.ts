/**
 * The writer of an import: each repository in one transaction under its repository lock (the
 * same lock and stores as publishing, so a running Signet sees all of it or none of it, and the
 * change reaches every process's cache), then the changefeed in notary's id order.
 */
import { withRepositoryLock, type ServiceContext } from '../service/context.js';
import { refreshSummary } from '../service/repository-summary.js';
import type { Stores } from '../storage/stores.js';
import { presentFiles, type ImportOptions, type Prepared, type PreparedKey } from './plan.js';
import type { FileProblem, ImportReport } from './report.js';
import type { CheckedFile } from './verify.js';

export type Outcome = 'imported' | 'up-to-date' | 'conflict' | 'retry';

const CHANGE_CATEGORIES = new Set(['update', 'deletion']);
/** Written for a null notary time, so that re-runs recognise the row. */
const UNKNOWN_TIME = '1970-01-01T00:00:00.000000Z';

class Rollback extends Error {}

export async function writeRepository(ctx: ServiceContext, prepared: Prepared, options: ImportOptions, report: ImportReport): Promise<Outcome> {
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
        if (wrote) {
          await refreshSummary(stores, ctx.cache, gun);
          await stores.metadata.announceChange(gun);
        }
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
export async function importChangefeed(stores: Stores, options: ImportOptions, report: ImportReport, conflicted: ReadonlySet<string>): Promise<void> {
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
