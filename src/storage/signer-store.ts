/**
 * Server-held signers: one row per (repository, name) with its state and rules, and its keys.
 * Private parts stay encrypted here; decryption is signing's job.
 */
import { sql } from 'kysely';
import { fixedWidth, requireTransaction, toBuffer, type Db } from './db.js';

export type SignerState = 'active' | 'disabled';
export type SignerKeyState = 'active' | 'retiring';
/** Where a signer key's private part is: sealed under the KEK in its row, or in the PKCS#11 token. */
export type SignerKeyBackend = 'kek' | 'pkcs11';

export interface SignerRow {
  gun: string;
  name: string;
  state: SignerState;
  /** As stored; the service parses and checks it. */
  rules: unknown;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface SignerKeyRow {
  keyId: string;
  gun: string;
  name: string;
  keytype: string;
  /** What delegations list: base64 of the PEM certificate. */
  publicKey: string;
  /** The sealed private key (backend `kek`); null for a key held in the token. */
  privateKey: Buffer | null;
  kekId: string | null;
  state: SignerKeyState;
  createdAt: Date;
  retireAfter: Date | null;
  backend: SignerKeyBackend;
  /** Hex CKA_ID of the key's objects on the token (backend `pkcs11`). */
  pkcs11Id: string | null;
}

/** A key as listed: everything but its encrypted private part. */
export type SignerKeyInfo = Omit<SignerKeyRow, 'privateKey' | 'kekId'>;

const SIGNER_COLUMNS = ['gun', 'name', 'state', 'rules', 'created_by', 'created_at', 'updated_at'] as const;
const KEY_COLUMNS = [
  'key_id',
  'gun',
  'name',
  'keytype',
  'public_key',
  'private_key',
  'kek_id',
  'state',
  'created_at',
  'retire_after',
  'backend',
  'pkcs11_id',
] as const;

interface RawSigner {
  gun: string;
  name: string;
  state: SignerState;
  rules: unknown;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

interface RawKey {
  key_id: string;
  gun: string;
  name: string;
  keytype: string;
  public_key: string;
  private_key: Buffer | Uint8Array | null;
  kek_id: string | null;
  state: SignerKeyState;
  created_at: Date;
  retire_after: Date | null;
  backend: SignerKeyBackend;
  pkcs11_id: string | null;
}

function toSigner(r: RawSigner): SignerRow {
  return {
    gun: r.gun,
    name: r.name,
    state: r.state,
    rules: typeof r.rules === 'string' ? (JSON.parse(r.rules) as unknown) : r.rules,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toKey(r: RawKey): SignerKeyRow {
  return {
    keyId: fixedWidth(r.key_id),
    gun: r.gun,
    name: r.name,
    keytype: r.keytype,
    publicKey: r.public_key,
    privateKey: r.private_key === null ? null : toBuffer(r.private_key),
    kekId: r.kek_id,
    state: r.state,
    createdAt: r.created_at,
    retireAfter: r.retire_after,
    backend: r.backend,
    pkcs11Id: r.pkcs11_id,
  };
}

export type NewSignerKey = {
  keyId: string;
  gun: string;
  name: string;
  keytype: string;
  publicKey: string;
} & ({ backend?: 'kek'; privateKey: Buffer; kekId: string } | { backend: 'pkcs11'; pkcs11Id: string });

export class SignerStore {
  constructor(private readonly db: Db) {}

  async insert(row: { gun: string; name: string; rules: unknown; createdBy: string; now: Date }): Promise<boolean> {
    const result = await this.db
      .insertInto('signers')
      .values({
        gun: row.gun,
        name: row.name,
        state: 'active',
        rules: JSON.stringify(row.rules),
        created_by: row.createdBy,
        created_at: row.now,
        updated_at: row.now,
      })
      .onConflict((oc) => oc.columns(['gun', 'name']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async get(gun: string, name: string): Promise<SignerRow | null> {
    const r = await this.db.selectFrom('signers').select(SIGNER_COLUMNS).where('gun', '=', gun).where('name', '=', name).executeTakeFirst();
    return r ? toSigner(r as RawSigner) : null;
  }

  /** A repository's signers (or every repository's), by repository then name. */
  async list(gun?: string): Promise<SignerRow[]> {
    let q = this.db.selectFrom('signers').select(SIGNER_COLUMNS).orderBy('gun').orderBy('name');
    if (gun !== undefined) q = q.where('gun', '=', gun);
    return (await q.execute()).map((r) => toSigner(r as RawSigner));
  }

  async setState(gun: string, name: string, state: SignerState, now: Date): Promise<boolean> {
    const r = await this.db.updateTable('signers').set({ state, updated_at: now }).where('gun', '=', gun).where('name', '=', name).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async setRules(gun: string, name: string, rules: unknown, now: Date): Promise<boolean> {
    const r = await this.db
      .updateTable('signers')
      .set({ rules: JSON.stringify(rules), updated_at: now })
      .where('gun', '=', gun)
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Remove a signer and (by cascade) its keys. */
  async delete(gun: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('signers').where('gun', '=', gun).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  /** A signer's keys, newest first. */
  async keys(gun: string, name: string): Promise<SignerKeyRow[]> {
    const rows = await this.db
      .selectFrom('signer_keys')
      .select(KEY_COLUMNS)
      .where('gun', '=', gun)
      .where('name', '=', name)
      .orderBy('created_at', 'desc')
      .orderBy('key_id')
      .execute();
    return rows.map((r) => toKey(r as RawKey));
  }

  async insertKey(key: NewSignerKey, now: Date): Promise<void> {
    await this.db
      .insertInto('signer_keys')
      .values({
        key_id: key.keyId,
        gun: key.gun,
        name: key.name,
        keytype: key.keytype,
        public_key: key.publicKey,
        ...(key.backend === 'pkcs11'
          ? { backend: 'pkcs11' as const, private_key: null, kek_id: null, pkcs11_id: key.pkcs11Id }
          : { backend: 'kek' as const, private_key: key.privateKey, kek_id: key.kekId, pkcs11_id: null }),
        state: 'active',
        created_at: now,
        retire_after: null,
      })
      .execute();
  }

  /**
   * The signer's active keys become retiring, usable until `retireAfter`; keys retiring already
   * keep their time unless it is later (a rotation never extends an older key's life).
   * Returns the key IDs that were active.
   */
  async retireActive(gun: string, name: string, retireAfter: Date): Promise<string[]> {
    const active = await this.db
      .selectFrom('signer_keys')
      .select('key_id')
      .where('gun', '=', gun)
      .where('name', '=', name)
      .where('state', '=', 'active')
      .execute();
    await this.db
      .updateTable('signer_keys')
      .set({
        retire_after: sql<Date>`case when state = 'active' then ${retireAfter}::timestamptz else least(retire_after, ${retireAfter}::timestamptz) end`,
        state: 'retiring',
      })
      .where('gun', '=', gun)
      .where('name', '=', name)
      .execute();
    return active.map((r) => fixedWidth(r.key_id));
  }

  /** Remove retiring keys whose grace period has passed; returns their key IDs. */
  async purgeRetired(gun: string, name: string, now: Date): Promise<string[]> {
    const rows = await this.db
      .deleteFrom('signer_keys')
      .where('gun', '=', gun)
      .where('name', '=', name)
      .where('state', '=', 'retiring')
      .where('retire_after', '<=', now)
      .returning('key_id')
      .execute();
    return rows.map((r) => fixedWidth(r.key_id));
  }

  /** How many signer keys are encrypted under each KEK (by fingerprint); keys held in a token are not. */
  async countPerKek(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('signer_keys')
      .select(['kek_id', (eb) => eb.fn.countAll<string>().as('n')])
      .where('backend', '=', 'kek')
      .groupBy('kek_id')
      .execute();
    return new Map(rows.map((r) => [r.kek_id ?? '', Number(r.n)]));
  }

  /** How many signer keys are held in a PKCS#11 token. */
  async countInToken(): Promise<number> {
    const r = await this.db
      .selectFrom('signer_keys')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('backend', '=', 'pkcs11')
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Every signer key sealed under a KEK, locked for re-encryption until the transaction ends (keys in a token have nothing to re-encrypt). */
  async allKeysForUpdate(): Promise<(SignerKeyRow & { privateKey: Buffer; kekId: string })[]> {
    const rows = await requireTransaction(this.db, 'locking signer keys')
      .selectFrom('signer_keys')
      .select(KEY_COLUMNS)
      .where('backend', '=', 'kek')
      .orderBy('key_id')
      .forUpdate()
      .execute();
    return rows.map((r) => toKey(r as RawKey) as SignerKeyRow & { privateKey: Buffer; kekId: string });
  }

  async replaceEncrypted(keyId: string, privateKey: Buffer, kekId: string): Promise<void> {
    await this.db.updateTable('signer_keys').set({ private_key: privateKey, kek_id: kekId }).where('key_id', '=', keyId).execute();
  }
}
