/**
 * The local trust store: the metadata a client trusted last, per repository, in notary's own
 * layout (`<trustDir>/tuf/<gun>/metadata/<role>.json`, delegations in sub-folders), so a trust
 * directory is shared with `docker trust` and `notary`. The cached root is the trust anchor of
 * the next run (trust on first use), and the cached versions are what a rollback is measured
 * against. Files are written to a temporary name and renamed, so a crash leaves either the old
 * file or the new one.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { ClientError } from './errors.js';
import type { KnownVersions } from '../tuf/notary/trusted-set.js';

const MAX_CACHED_FILE = 100 * 1024 * 1024;

/** Where a repository's trusted metadata is kept between updates: a trust directory, or memory. */
export interface MetadataCache {
  /** Where it is kept, for messages. */
  metadataDir(gun: string): string;
  read(gun: string, role: string): Buffer | null;
  write(gun: string, role: string, bytes: Buffer): void;
  remove(gun: string, role: string): void;
  cachedDelegations(gun: string): string[];
  knownVersions(gun: string): KnownVersions;
}

/** Versions in cached role files (unparseable ones are ignored). */
function versionsOf(read: (role: string) => Buffer | null, delegations: string[]): KnownVersions {
  const version = (role: string): number | undefined => {
    const bytes = read(role);
    if (!bytes) return undefined;
    try {
      const v = (JSON.parse(bytes.toString('utf8')) as { signed?: { version?: unknown } }).signed?.version;
      return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const targets: Record<string, number> = {};
  for (const role of ['targets', ...delegations]) {
    const v = version(role);
    if (v !== undefined) targets[role] = v;
  }
  const known: KnownVersions = { targets };
  const ts = version('timestamp');
  const snap = version('snapshot');
  if (ts !== undefined) known.timestamp = ts;
  if (snap !== undefined) known.snapshot = snap;
  return known;
}

/** Trusted metadata in memory, for a long-running process (the deploy gate): versions persist while it runs. */
export class MemoryMetadataCache implements MetadataCache {
  private readonly files = new Map<string, Map<string, Buffer>>();
  metadataDir(gun: string): string {
    return `memory:${gun}`;
  }
  private of(gun: string): Map<string, Buffer> {
    let m = this.files.get(gun);
    if (!m) this.files.set(gun, (m = new Map()));
    return m;
  }
  read(gun: string, role: string): Buffer | null {
    return this.files.get(gun)?.get(role) ?? null;
  }
  write(gun: string, role: string, bytes: Buffer): void {
    this.of(gun).set(role, bytes);
  }
  remove(gun: string, role: string): void {
    this.files.get(gun)?.delete(role);
  }
  cachedDelegations(gun: string): string[] {
    return [...(this.files.get(gun)?.keys() ?? [])].filter((r) => r.startsWith('targets/')).sort();
  }
  knownVersions(gun: string): KnownVersions {
    return versionsOf((role) => this.read(gun, role), this.cachedDelegations(gun));
  }
}

export class TrustStore implements MetadataCache {
  constructor(readonly trustDir: string) {}

  metadataDir(gun: string): string {
    return path.join(this.trustDir, 'tuf', ...gun.split('/'), 'metadata');
  }

  private file(gun: string, role: string): string {
    return path.join(this.metadataDir(gun), ...`${role}.json`.split('/'));
  }

  /** The cached bytes of a role, or null. */
  read(gun: string, role: string): Buffer | null {
    const file = this.file(gun, role);
    try {
      const bytes = readFileSync(file);
      return bytes.length > MAX_CACHED_FILE ? null : bytes;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw new ClientError('TRUST_STORE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  write(gun: string, role: string, bytes: Buffer): void {
    const file = this.file(gun, role);
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      writeFileAtomic(file, bytes, 0o644);
    } catch (err) {
      throw new ClientError('TRUST_STORE', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  remove(gun: string, role: string): void {
    rmSync(this.file(gun, role), { force: true });
  }

  /** Forget a repository (after `delete --remote`, or to trust a new root on purpose). */
  forget(gun: string): void {
    rmSync(path.join(this.trustDir, 'tuf', ...gun.split('/')), { recursive: true, force: true });
  }

  /** The delegation roles cached for a repository (`targets/…`). */
  cachedDelegations(gun: string): string[] {
    const found: string[] = [];
    const walk = (dir: string, prefix: string) => {
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        if (entry.isDirectory()) walk(path.join(dir, entry.name), `${prefix}/${entry.name}`);
        else if (entry.name.endsWith('.json')) found.push(`${prefix}/${entry.name.slice(0, -5)}`);
      }
    };
    walk(path.join(this.metadataDir(gun), 'targets'), 'targets');
    return found.sort();
  }

  /** The versions trusted last time, read from the cached files (unparseable ones are ignored). */
  knownVersions(gun: string): KnownVersions {
    return versionsOf((role) => this.read(gun, role), this.cachedDelegations(gun));
  }
}
