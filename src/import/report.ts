/** What `signet import` did: counts, the problems of each repository and key, and notes. */

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

/** A report with nothing counted yet. */
export function emptyReport(dryRun: boolean, keysRead: boolean): ImportReport {
  return {
    dryRun,
    repositories: { total: 0, imported: 0, upToDate: 0, conflicted: 0 },
    files: { source: 0, imported: 0, existing: 0, refused: 0, unverified: 0 },
    changefeed: { source: 0, imported: 0, existing: 0, skipped: 0, idsPreserved: null },
    keys: { source: 0, imported: 0, existing: 0, failed: 0, skippedRole: 0, read: keysRead },
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
}

/** Repositories are written in any order: the report lists problems by repository. */
export function sortProblems(report: ImportReport): void {
  const byGun = (a: { gun: string }, b: { gun: string }) => (a.gun < b.gun ? -1 : a.gun > b.gun ? 1 : 0);
  for (const list of [report.refused, report.unverified, report.conflicts, report.keyProblems]) list.sort(byGun);
  report.withoutTimestampKey.sort();
}
