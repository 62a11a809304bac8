-- Who changed what: one row per accepted update, repository deletion and server key rotation,
-- written in the same transaction as the change itself.
CREATE TABLE audit_log (
  id          bigserial    PRIMARY KEY,
  created_at  timestamptz  NOT NULL DEFAULT now(),
  gun         varchar(255) NOT NULL,
  action      varchar(32)  NOT NULL,
  subject     text         NOT NULL,
  address     text,
  request_id  text,
  detail      jsonb        NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_gun_time ON audit_log (gun, created_at);
CREATE INDEX audit_log_time ON audit_log (created_at);
