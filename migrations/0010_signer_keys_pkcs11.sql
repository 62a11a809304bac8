-- Signer keys held in a PKCS#11 token (SIGNET_PKCS11_MODULE): the private key is generated in
-- the token and never leaves it, so such a row has no private_key and no kek_id; `pkcs11_id`
-- is the hex of the key objects' CKA_ID on the token (their CKA_LABEL names the repository and
-- the signer). Keys sealed under the KEK keep backend 'kek'.
ALTER TABLE signer_keys ADD COLUMN backend varchar(16) NOT NULL DEFAULT 'kek' CHECK (backend IN ('kek', 'pkcs11'));
ALTER TABLE signer_keys ADD COLUMN pkcs11_id varchar(128);
ALTER TABLE signer_keys ALTER COLUMN private_key DROP NOT NULL;
ALTER TABLE signer_keys ALTER COLUMN kek_id DROP NOT NULL;
ALTER TABLE signer_keys ADD CONSTRAINT signer_keys_custody CHECK (
  (backend = 'kek' AND private_key IS NOT NULL AND kek_id IS NOT NULL AND pkcs11_id IS NULL)
  OR (backend = 'pkcs11' AND private_key IS NULL AND kek_id IS NULL AND pkcs11_id IS NOT NULL)
);
