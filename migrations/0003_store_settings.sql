-- Facts about the store as a whole, one row each. `kek_id` is the fingerprint (never the key)
-- of the key-encryption key every server key is encrypted under: a process configured with
-- another KEK refuses to start instead of failing to sign, or creating keys under a second KEK.
CREATE TABLE store_settings (
  name        varchar(64)  PRIMARY KEY,
  value       text         NOT NULL,
  updated_at  timestamptz  NOT NULL DEFAULT now()
);
