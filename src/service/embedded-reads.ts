/**
 * What the embedded store's update transactions learnt of each repository, kept for the next
 * one. The embedded store is one process over one connection, and every change to a
 * repository's files and server keys goes through withRepositoryLock here, so what a committed
 * transaction read and wrote is still what the database holds when the next transaction of that
 * repository starts: the current chain need not be read again before each update. A transaction
 * that fails leaves nothing behind (its reads were taken out before it started). Not used on
 * Postgres, where other processes write.
 */
import { LockedReads } from '../storage/metadata-store.js';

export class EmbeddedReads {
  private readonly entries = new Map<string, LockedReads>();
  private bytes = 0;

  constructor(
    private readonly maxRepositories = 2_000,
    /** Memory bound over all repositories; the oldest go first past it. */
    private readonly maxBytes = 32 * 1024 * 1024,
  ) {}

  /** The reads of `gun` for a transaction about to start; they are no longer kept meanwhile. */
  take(gun: string): LockedReads {
    const reads = this.entries.get(gun);
    if (!reads) return new LockedReads();
    this.entries.delete(gun);
    this.bytes -= reads.bytes;
    return reads;
  }

  /** The transaction of `gun` committed: keep what it knew. */
  keep(gun: string, reads: LockedReads): void {
    if (!reads.only(gun) || reads.bytes > this.maxBytes) return;
    this.entries.set(gun, reads);
    this.bytes += reads.bytes;
    while (this.entries.size > this.maxRepositories || this.bytes > this.maxBytes) {
      const [oldest, r] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.bytes -= r.bytes;
    }
  }

  /** Forget everything (a change made outside withRepositoryLock). */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
