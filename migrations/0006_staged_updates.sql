-- Key ceremonies: updates staged before they meet their signature thresholds. A staged update
-- holds one role file (root, targets or a delegation): the canonical bytes of its `signed`
-- part, which never change, and the signatures collected so far. It is never served as
-- metadata; once every threshold is met it is published through the normal update path in the
-- transaction that closes it.
CREATE TABLE staged_updates (
  id                 uuid         PRIMARY KEY,
  gun                varchar(255) NOT NULL,
  role               varchar(255) NOT NULL,
  version            integer      NOT NULL CHECK (version > 0),
  signed             bytea        NOT NULL,
  signatures         jsonb        NOT NULL DEFAULT '[]'::jsonb,
  -- The root version current when it was staged: a rotation meanwhile makes it outdated.
  base_root_version  integer      NOT NULL,
  state              varchar(16)  NOT NULL CHECK (state IN ('pending', 'published', 'cancelled', 'expired')),
  staged_by          text         NOT NULL,
  created_at         timestamptz  NOT NULL DEFAULT now(),
  expires_at         timestamptz  NOT NULL,
  closed_at          timestamptz,
  closed_by          text
);
CREATE INDEX staged_updates_gun ON staged_updates (gun, created_at);
CREATE INDEX staged_updates_pending ON staged_updates (expires_at) WHERE state = 'pending';
