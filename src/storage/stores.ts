/**
 * Every store over one handle: the database, or (from `transaction` / `inTransaction`) one
 * transaction, so that what a use case writes through several stores commits or fails together.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { AuditStore } from './audit-store.js';
import { ChangefeedStore } from './changefeed-store.js';
import type { Db } from './db.js';
import { MetadataStore, type LockedReads } from './metadata-store.js';
import { OidcReplayStore } from './oidc-replay-store.js';
import type { Schema } from './schema.js';
import { ServerKeyStore } from './server-key-store.js';
import { SettingsStore } from './store-settings.js';
import { SignerStore } from './signer-store.js';
import { StagedStore } from './staged-store.js';
import { SummaryStore } from './summary-store.js';

export class Stores {
  readonly metadata: MetadataStore;
  readonly changefeed: ChangefeedStore;
  readonly serverKeys: ServerKeyStore;
  readonly audit: AuditStore;
  readonly settings: SettingsStore;
  /** Staged updates of key ceremonies. */
  readonly staged: StagedStore;
  /** The jti of each accepted OIDC ID token, until it expires. */
  readonly oidcReplay: OidcReplayStore;
  /** Server-held signers and their keys. */
  readonly signers: SignerStore;
  /** The inspector's one-row-per-repository summaries. */
  readonly summaries: SummaryStore;

  /** `locked`: bound to a transaction that holds a repository's write lock, remembering its reads there. */
  constructor(
    private readonly db: Db,
    locked: LockedReads | null = null,
  ) {
    this.metadata = new MetadataStore(db, locked);
    this.changefeed = new ChangefeedStore(db);
    this.serverKeys = new ServerKeyStore(db, locked?.serverKeys ?? null);
    this.audit = new AuditStore(db);
    this.settings = new SettingsStore(db);
    this.staged = new StagedStore(db);
    this.oidcReplay = new OidcReplayStore(db);
    this.signers = new SignerStore(db);
    this.summaries = new SummaryStore(db);
  }

  /** The same stores bound to an open transaction. */
  inTransaction(trx: Transaction<Schema>, locked: LockedReads | null = null): Stores {
    return new Stores(trx, locked);
  }

  /**
   * Run `work` in one transaction with stores bound to it: committed if it returns, rolled back
   * if it throws. `locked`: the work holds the write lock of the repository it changes from its
   * first statement, so the stores may remember what they read of it (see LockedReads).
   */
  async transaction<T>(work: (stores: Stores) => Promise<T>, opts: { locked?: LockedReads } = {}): Promise<T> {
    if (this.db.isTransaction) throw new Error('these stores are already bound to a transaction');
    return (this.db as Kysely<Schema>).transaction().execute((trx) => work(this.inTransaction(trx, opts.locked ?? null)));
  }

  /**
   * Run `work` holding the database-wide advisory lock `key` on a connection of its own, or
   * return null at once if another session holds it. The lock is a session lock: it guards work
   * that spans many transactions (a background scan) and is released when `work` ends.
   */
  async tryExclusive<T>(key: number, work: () => Promise<T>): Promise<T | null> {
    if (this.db.isTransaction) throw new Error('a session lock needs stores over the database, not a transaction');
    return (this.db as Kysely<Schema>).connection().execute(async (conn) => {
      const got = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${key}) as ok`.execute(conn);
      if (!got.rows[0]?.ok) return null;
      try {
        return await work();
      } finally {
        await sql`select pg_advisory_unlock(${key})`.execute(conn);
      }
    });
  }
}
