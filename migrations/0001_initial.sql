-- Every version of every role of every repository (GUN), as the exact bytes uploaded or
-- generated. Rows are never updated; a repository deletion removes all its rows.
CREATE TABLE tuf_files (
  id          bigserial PRIMARY KEY,
  gun         varchar(255) NOT NULL,
  role        varchar(255) NOT NULL,
  version     integer      NOT NULL CHECK (version > 0),
  sha256      char(64)     NOT NULL,
  data        bytea        NOT NULL,
  created_at  timestamptz  NOT NULL DEFAULT now(),
  UNIQUE (gun, role, version)
);
-- `<role>.<sha256>.json` lookups.
CREATE INDEX tuf_files_checksum ON tuf_files (gun, role, sha256);

-- One record per stored timestamp ("update") and per repository deletion ("deletion").
CREATE TABLE changefeed (
  id          bigserial    PRIMARY KEY,
  created_at  timestamptz  NOT NULL DEFAULT now(),
  gun         varchar(255) NOT NULL,
  version     integer      NOT NULL,
  sha256      varchar(64)  NOT NULL DEFAULT '',
  category    varchar(20)  NOT NULL CHECK (category IN ('update', 'deletion'))
);
CREATE INDEX changefeed_gun ON changefeed (gun, id);

-- Keys the server holds for repositories (timestamp, and snapshot when asked). The private
-- part is AES-256-GCM encrypted under the key-encryption key named by kek_id.
CREATE TABLE server_keys (
  key_id       char(64)     PRIMARY KEY,
  gun          varchar(255) NOT NULL,
  role         varchar(20)  NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
  keytype      varchar(20)  NOT NULL,
  public_key   text         NOT NULL,
  private_key  bytea        NOT NULL,
  kek_id       varchar(64)  NOT NULL,
  created_at   timestamptz  NOT NULL DEFAULT now(),
  last_used    timestamptz
);
CREATE INDEX server_keys_gun_role ON server_keys (gun, role, created_at);
