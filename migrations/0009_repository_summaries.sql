-- What the inspector lists: one row per repository with current metadata, rewritten in the
-- transaction of every change to it (publish, re-sign, deletion, import), so that the list of
-- 10,000 repositories is one indexed read. `expiries` holds the roles that need their owner to
-- re-sign them (root, targets, delegations, and a snapshot whose key the client holds), each
-- {role, version, expires}; `nearest_expiry` is the earliest of them.
CREATE TABLE repository_summaries (
  gun             varchar(255) PRIMARY KEY,
  signed_tags     integer      NOT NULL,
  signers         jsonb        NOT NULL DEFAULT '[]'::jsonb,
  last_change     timestamptz  NOT NULL,
  nearest_expiry  timestamptz,
  nearest_role    varchar(255),
  expiries        jsonb        NOT NULL DEFAULT '[]'::jsonb,
  updated_at      timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX repository_summaries_expiry ON repository_summaries (nearest_expiry);
CREATE INDEX repository_summaries_changed ON repository_summaries (last_change);
CREATE INDEX repository_summaries_tags ON repository_summaries (signed_tags);
