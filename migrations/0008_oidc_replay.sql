-- OIDC ID tokens accepted so far, by issuer and `jti`: a token is accepted once, and its row is
-- kept until the token expires (after which it could not be accepted anyway). The primary key
-- makes "accept once" atomic across every Signet process on the database.
CREATE TABLE oidc_replay (
  issuer      varchar(512) NOT NULL,
  jti         varchar(255) NOT NULL,
  expires_at  timestamptz  NOT NULL,
  first_seen  timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (issuer, jti)
);
CREATE INDEX oidc_replay_expires ON oidc_replay (expires_at);
