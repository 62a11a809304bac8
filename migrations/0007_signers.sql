-- Server-held signers: a named delegation key of a repository that Signet holds and signs with
-- when a pipeline asks (POST …/signers/{name}/sign). `rules` says who may ask and for which
-- tags. Each signer has one active key and, after a rotation, keys kept for a grace period
-- until the repository owner has moved the delegation to the new key.
CREATE TABLE signers (
  gun          varchar(255) NOT NULL,
  name         varchar(200) NOT NULL,
  state        varchar(16)  NOT NULL CHECK (state IN ('active', 'disabled')),
  rules        jsonb        NOT NULL DEFAULT '{}'::jsonb,
  created_by   text         NOT NULL,
  created_at   timestamptz  NOT NULL DEFAULT now(),
  updated_at   timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (gun, name)
);

-- A signer's keys. `public_key` is what delegations list: the base64 of the PEM delegation
-- certificate (keytype ecdsa-x509). The private part is AES-256-GCM encrypted under the KEK
-- named by kek_id, bound to (key ID, repository, signer name).
CREATE TABLE signer_keys (
  key_id        char(64)     PRIMARY KEY,
  gun           varchar(255) NOT NULL,
  name          varchar(200) NOT NULL,
  keytype       varchar(20)  NOT NULL,
  public_key    text         NOT NULL,
  private_key   bytea        NOT NULL,
  kek_id        varchar(64)  NOT NULL,
  state         varchar(16)  NOT NULL CHECK (state IN ('active', 'retiring')),
  created_at    timestamptz  NOT NULL DEFAULT now(),
  retire_after  timestamptz,
  FOREIGN KEY (gun, name) REFERENCES signers (gun, name) ON DELETE CASCADE
);
CREATE INDEX signer_keys_signer ON signer_keys (gun, name, created_at);

-- `signet audit --signer NAME` and `GET /_signet/audit?signer=NAME`: every record about a
-- signer (its management and every signing call, allowed or refused) names it in `detail`.
CREATE INDEX audit_log_signer ON audit_log ((detail->>'signer'), id) WHERE detail ? 'signer';
