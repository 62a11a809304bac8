/**
 * One process at a time may own an embedded (PGlite) data directory. PGlite has no server to
 * arbitrate between processes: two opening the same files each believe they are alone, so an
 * admin command run beside a running server would change files under it (a deleted repository
 * the server keeps serving) or corrupt them. The owner writes `<data dir>/signet.lock` with its
 * PID and process start time; a lock whose process is gone (or whose PID now belongs to another
 * process) is stale and is taken over.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SignetError } from '../tuf/core/signet-error.js';

export const LOCK_FILE = 'signet.lock';

interface LockRecord {
  pid: number;
  /** Start time of the process (Linux: clock ticks since boot), to tell a reused PID apart. */
  startTime: string | null;
  command: string;
  since: string;
  /** Where the owning server answers, once it listens. */
  url?: string;
}

export class StoreLockedError extends SignetError {
  override name = 'StoreLockedError';
  readonly code = 'STORE_LOCKED';
}

function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(record: LockRecord): boolean {
  try {
    process.kill(record.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = processStartTime(record.pid);
  return record.startTime === null || started === null || started === record.startTime;
}

function readRecord(file: string): LockRecord | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockRecord>;
    return typeof parsed.pid === 'number' ? (parsed as LockRecord) : null;
  } catch {
    return null;
  }
}

function describe(dataDir: string, owner: LockRecord): string {
  const what = owner.url ? `a Signet server listening on ${owner.url}` : `another Signet process (signet ${owner.command})`;
  return (
    `the embedded store in ${dataDir} is in use by ${what}, PID ${owner.pid}, since ${owner.since}: ` +
    'only one process may open it at a time. Stop that process first, or make the change through ' +
    "the running server's API (see docs/operations.md); a store shared by several processes needs a Postgres database"
  );
}

export interface StoreLock {
  /** Add the server's URL to the lock, so that a refused command can say where it runs. */
  noteUrl(url: string): void;
  release(): void;
}

/** Take the lock on `dataDir`, or throw StoreLockedError naming the process that holds it. */
export function lockDataDir(dataDir: string): StoreLock {
  const file = path.join(dataDir, LOCK_FILE);
  const record: LockRecord = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    command: process.argv.slice(2).join(' ') || 'library',
    since: new Date().toISOString(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(record) + '\n', { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = readRecord(file);
    if (owner && (owner.pid === process.pid ? owner.startTime === record.startTime : isAlive(owner))) {
      throw new StoreLockedError(describe(dataDir, owner));
    }
    // Stale (its process is gone) or unreadable (a crash mid-write): take it over. Two
    // processes doing so at once both unlink, and only one of them then wins the 'wx' write.
    if (attempt >= 3) throw new StoreLockedError(`cannot take the lock ${file}: it keeps changing`);
    try {
      unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  let held = true;
  // An exit without close (an uncaught error, process.exit) still frees the store.
  const onExit = () => release();
  process.once('exit', onExit);
  function release() {
    if (!held) return;
    held = false;
    process.removeListener('exit', onExit);
    const current = readRecord(file);
    if (current?.pid === record.pid && current.startTime === record.startTime && current.since === record.since) {
      try {
        unlinkSync(file);
      } catch {
        // Already gone.
      }
    }
  }
  return {
    noteUrl(url: string) {
      if (!held) return;
      record.url = url;
      writeFileSync(file, JSON.stringify(record) + '\n', { mode: 0o600 });
    },
    release,
  };
}
