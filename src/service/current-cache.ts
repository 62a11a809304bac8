/**
 * Current metadata of recently read repositories, in memory. A stored file never changes, so
 * only "which file is current" can go stale; every change to a repository bumps its
 * generation here (from this process directly, from others through database notifications),
 * and a read result is cached only if no change happened while it was being read. While
 * notifications cannot be received the cache is off, so it never serves what it cannot know.
 */
import type { StoredFileRow } from '../storage/metadata-store.js';
import type { CurrentChain } from './repository-state.js';

interface Entry {
  chain?: CurrentChain | null;
  roles: Map<string, StoredFileRow | null>;
  byChecksum: Map<string, StoredFileRow>;
}

const MAX_ROLES_PER_ENTRY = 256;

export class CurrentMetadataCache {
  private readonly entries = new Map<string, Entry>();
  private readonly generations = new Map<string, number>();
  private epoch = 0;
  private enabled: boolean;
  private bytes = 0;

  constructor(
    enabled: boolean,
    private readonly capacity = 10_000,
    /** Memory bound: past it the cache starts over (rows of large files add up quickly). */
    private readonly maxBytes = 256 * 1024 * 1024,
  ) {
    this.enabled = enabled;
  }

  private account(row: StoredFileRow | null | undefined): void {
    if (!row) return;
    this.bytes += row.data.length;
    if (this.bytes > this.maxBytes) {
      this.entries.clear();
      this.bytes = 0;
    }
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.entries.clear();
    this.bytes = 0;
    this.epoch++;
  }

  /** A repository changed: forget what is cached for it. */
  invalidate(gun: string): void {
    this.entries.delete(gun);
    this.generations.set(gun, (this.generations.get(gun) ?? 0) + 1);
    if (this.generations.size > this.capacity * 4) {
      // Bounded memory: forgetting every generation is safe once the epoch moves on.
      this.generations.clear();
      this.entries.clear();
      this.epoch++;
    }
  }

  /** A token to pass to `store*`: stores are dropped if the repository changed in between. */
  version(gun: string): string {
    return `${this.epoch}:${this.generations.get(gun) ?? 0}`;
  }

  private entry(gun: string, version: string): Entry | null {
    if (!this.enabled || version !== this.version(gun)) return null;
    let e = this.entries.get(gun);
    if (!e) {
      if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
      e = { roles: new Map(), byChecksum: new Map() };
      this.entries.set(gun, e);
    }
    return e;
  }

  chain(gun: string): CurrentChain | null | undefined {
    return this.enabled ? this.entries.get(gun)?.chain : undefined;
  }

  storeChain(gun: string, version: string, chain: CurrentChain | null): void {
    const e = this.entry(gun, version);
    if (e) {
      e.chain = chain;
      this.account(chain?.timestamp.row);
      this.account(chain?.snapshot?.row);
    }
  }

  role(gun: string, role: string): StoredFileRow | null | undefined {
    return this.enabled ? this.entries.get(gun)?.roles.get(role) : undefined;
  }

  storeRole(gun: string, version: string, role: string, row: StoredFileRow | null): void {
    const e = this.entry(gun, version);
    if (e && (e.roles.size < MAX_ROLES_PER_ENTRY || e.roles.has(role))) {
      e.roles.set(role, row);
      this.account(row);
    }
  }

  checksum(gun: string, key: string): StoredFileRow | undefined {
    return this.enabled ? this.entries.get(gun)?.byChecksum.get(key) : undefined;
  }

  storeChecksum(gun: string, version: string, key: string, row: StoredFileRow): void {
    const e = this.entry(gun, version);
    if (e && e.byChecksum.size < MAX_ROLES_PER_ENTRY) {
      e.byChecksum.set(key, row);
      this.account(row);
    }
  }
}
