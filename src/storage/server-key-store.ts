/** Server-held keys. Private parts stay encrypted here; decryption is signing's job. */
import { sql } from 'kysely';
import { fixedWidth, requireTransaction, toBuffer, type Db } from './db.js';

export type ServerKeyRole = 'timestamp' | 'snapshot';

export interface ServerKeyRow {
  keyId: string;
  gun: string;
  role: ServerKeyRole;
  keytype: string;
  publicKey: string;
  privateKey: Buffer;
  kekId: string;
  createdAt: Date;
  lastUsed: Date | null;
}

/** A key as listed: everything but its encrypted private part. */
export type ServerKeyInfo = Omit<ServerKeyRow, 'privateKey' | 'kekId'>;

/** A key copied from another server, sealed under this store's KEK, with the times it recorded. */
export interface ImportedKey extends Omit<ServerKeyRow, 'createdAt' | 'lastUsed'> {
  /** RFC 3339 text as the source gave it; null lets the database stamp the time. */
  createdAt: string | null;
  lastUsed: string | null;
}

const COLUMNS = ['key_id', 'gun', 'role', 'keytype', 'public_key', 'private_key', 'kek_id', 'created_at', 'last_used'] as const;
const INFO_COLUMNS = ['key_id', 'gun', 'role', 'keytype', 'public_key', 'created_at', 'last_used'] as const;
// Bind parameters per `key_id in (…)` lookup.
const LOOKUP_IDS = 5000;

interface InfoColumns {
  key_id: string;
  gun: string;
  role: ServerKeyRole;
  keytype: string;
  public_key: string;
  created_at: Date;
  last_used: Date | null;
}

function toInfo(r: InfoColumns): ServerKeyInfo {
  return { keyId: fixedWidth(r.key_id), gun: r.gun, role: r.role, keytype: r.keytype, publicKey: r.public_key, createdAt: r.created_at, lastUsed: r.last_used };
}

function toRow(r: InfoColumns & { private_key: Buffer | Uint8Array; kek_id: string }): ServerKeyRow {
  return { ...toInfo(r), privateKey: toBuffer(r.private_key), kekId: r.kek_id };
}

export class ServerKeyStore {
  constructor(
    private readonly db: Db,
    /**
     * A repository's keys as read under its lock (LockedReads.serverKeys): asked for by signing
     * and again by the summary, and on the embedded store by the next update. Any write here
     * forgets them.
     */
    private readonly lockedKeys: Map<string, ServerKeyRow[]> | null = null,
  ) {}

  /** A repository's keys, oldest first. */
  async ofRepository(gun: string): Promise<ServerKeyRow[]> {
    const known = this.lockedKeys?.get(gun);
    if (known) return known.map((k) => ({ ...k }));
    const rows = (await this.db.selectFrom('server_keys').select(COLUMNS).where('gun', '=', gun).orderBy('created_at').execute()).map(toRow);
    this.lockedKeys?.set(
      gun,
      rows.map((k) => ({ ...k })),
    );
    return rows;
  }

  /** Every key (or one repository's), by repository then age, without private parts. */
  async list(gun?: string): Promise<ServerKeyInfo[]> {
    let q = this.db.selectFrom('server_keys').select(INFO_COLUMNS).orderBy('gun').orderBy('created_at');
    if (gun) q = q.where('gun', '=', gun);
    return (await q.execute()).map(toInfo);
  }

  /** The keys among `keyIds` that are held, without private parts. */
  async byIds(keyIds: readonly string[]): Promise<ServerKeyInfo[]> {
    const out: ServerKeyInfo[] = [];
    for (let i = 0; i < keyIds.length; i += LOOKUP_IDS) {
      const rows = await this.db
        .selectFrom('server_keys')
        .select(INFO_COLUMNS)
        .where('key_id', 'in', keyIds.slice(i, i + LOOKUP_IDS))
        .execute();
      out.push(...rows.map(toInfo));
    }
    return out;
  }

  /** The most recently created key, if any. */
  async newest(): Promise<ServerKeyRow | null> {
    const row = await this.db.selectFrom('server_keys').select(COLUMNS).orderBy('created_at', 'desc').limit(1).executeTakeFirst();
    return row ? toRow(row) : null;
  }

  /** The newest key of (gun, role) that has never signed: handed out again instead of a new one. */
  async pending(gun: string, role: ServerKeyRole): Promise<ServerKeyRow | null> {
    const row = await this.db
      .selectFrom('server_keys')
      .select(COLUMNS)
      .where('gun', '=', gun)
      .where('role', '=', role)
      .where('last_used', 'is', null)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toRow(row) : null;
  }

  async insert(key: Omit<ServerKeyRow, 'createdAt' | 'lastUsed'>): Promise<void> {
    this.lockedKeys?.clear();
    await this.db
      .insertInto('server_keys')
      .values({
        key_id: key.keyId,
        gun: key.gun,
        role: key.role,
        keytype: key.keytype,
        public_key: key.publicKey,
        private_key: key.privateKey,
        kek_id: key.kekId,
      })
      .execute();
  }

  async insertImported(keys: readonly ImportedKey[]): Promise<void> {
    this.lockedKeys?.clear();
    if (keys.length === 0) return;
    await this.db
      .insertInto('server_keys')
      .values(
        keys.map((k) => ({
          key_id: k.keyId,
          gun: k.gun,
          role: k.role,
          keytype: k.keytype,
          public_key: k.publicKey,
          private_key: k.privateKey,
          kek_id: k.kekId,
          ...(k.createdAt ? { created_at: sql<Date>`${k.createdAt}::timestamptz` } : {}),
          last_used: k.lastUsed ? sql<Date>`${k.lastUsed}::timestamptz` : null,
        })),
      )
      .execute();
  }

  /** Record that keys signed, the first time they do (a pending key stops being handed out). */
  async markUsed(keyIds: readonly string[]): Promise<void> {
    // Keys this transaction already knows to have signed need no statement.
    const known = new Map([...(this.lockedKeys?.values() ?? [])].flat().map((k) => [k.keyId, k]));
    const unmarked = keyIds.filter((id) => known.get(id)?.lastUsed == null);
    if (unmarked.length === 0) return;
    const now = new Date();
    await this.db.updateTable('server_keys').set({ last_used: now }).where('key_id', 'in', unmarked).where('last_used', 'is', null).execute();
    for (const id of unmarked) {
      const k = known.get(id);
      if (k) k.lastUsed = now;
    }
  }

  /** How many server keys are encrypted under each KEK (by fingerprint). */
  async countPerKek(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('server_keys')
      .select(['kek_id', (eb) => eb.fn.countAll<string>().as('n')])
      .groupBy('kek_id')
      .execute();
    return new Map(rows.map((r) => [r.kek_id, Number(r.n)]));
  }

  /** Every server key, locked for re-encryption until the transaction ends. */
  async allForUpdate(): Promise<ServerKeyRow[]> {
    const rows = await requireTransaction(this.db, 'locking server keys').selectFrom('server_keys').select(COLUMNS).orderBy('key_id').forUpdate().execute();
    return rows.map(toRow);
  }

  async replaceEncrypted(keyId: string, privateKey: Buffer, kekId: string): Promise<void> {
    this.lockedKeys?.clear();
    await this.db.updateTable('server_keys').set({ private_key: privateKey, kek_id: kekId }).where('key_id', '=', keyId).execute();
  }
}
