/** Table types for kysely; they mirror migrations/*.sql. */
import type { ColumnType, Generated } from 'kysely';

export interface TufFilesTable {
  id: Generated<string>;
  gun: string;
  role: string;
  version: number;
  sha256: string;
  data: Buffer | Uint8Array;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export interface ChangefeedTable {
  id: Generated<string>;
  created_at: ColumnType<Date, Date | undefined, never>;
  gun: string;
  version: number;
  sha256: string;
  category: 'update' | 'deletion';
}

export interface ServerKeysTable {
  key_id: string;
  gun: string;
  role: 'timestamp' | 'snapshot';
  keytype: string;
  public_key: string;
  private_key: Buffer | Uint8Array;
  kek_id: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  last_used: Date | null;
}

export interface AuditLogTable {
  id: Generated<string>;
  created_at: ColumnType<Date, Date | undefined, never>;
  gun: string;
  action: string;
  subject: string;
  address: string | null;
  request_id: string | null;
  detail: ColumnType<unknown, string, never>;
}

export interface StoreSettingsTable {
  name: string;
  value: string;
  updated_at: ColumnType<Date, Date | undefined, Date | undefined>;
}

// ---- staged updates (key ceremonies) ----
export interface StagedUpdatesTable {
  id: string;
  gun: string;
  role: string;
  version: number;
  signed: Buffer | Uint8Array;
  signatures: ColumnType<unknown, string, string>;
  base_root_version: number;
  state: 'pending' | 'published' | 'cancelled' | 'expired';
  staged_by: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
  closed_at: Date | null;
  closed_by: string | null;
}

// ---- OIDC ID tokens accepted once (replay protection) ----
export interface OidcReplayTable {
  issuer: string;
  jti: string;
  expires_at: Date;
  first_seen: ColumnType<Date, Date | undefined, Date | undefined>;
}

// ---- server-held signers ----
export interface SignersTable {
  gun: string;
  name: string;
  state: 'active' | 'disabled';
  rules: ColumnType<unknown, string, string>;
  created_by: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface SignerKeysTable {
  key_id: string;
  gun: string;
  name: string;
  keytype: string;
  public_key: string;
  /** Null for a key held in a PKCS#11 token. */
  private_key: Buffer | Uint8Array | null;
  kek_id: string | null;
  state: 'active' | 'retiring';
  created_at: ColumnType<Date, Date | undefined, never>;
  retire_after: Date | null;
  backend: ColumnType<'kek' | 'pkcs11', 'kek' | 'pkcs11' | undefined, 'kek' | 'pkcs11'>;
  pkcs11_id: string | null;
}

// ---- the inspector's repository list ----
export interface RepositorySummariesTable {
  gun: string;
  signed_tags: number;
  signers: ColumnType<unknown, string, string>;
  last_change: Date;
  nearest_expiry: Date | null;
  nearest_role: string | null;
  expiries: ColumnType<unknown, string, string>;
  updated_at: ColumnType<Date, Date | undefined, Date | undefined>;
}

export interface SignetMigrationsTable {
  name: string;
  applied_at: ColumnType<Date, Date | undefined, never>;
}

export interface Schema {
  tuf_files: TufFilesTable;
  changefeed: ChangefeedTable;
  server_keys: ServerKeysTable;
  audit_log: AuditLogTable;
  signet_migrations: SignetMigrationsTable;
  store_settings: StoreSettingsTable;
  staged_updates: StagedUpdatesTable;
  oidc_replay: OidcReplayTable;
  signers: SignersTable;
  signer_keys: SignerKeysTable;
  repository_summaries: RepositorySummariesTable;
}
